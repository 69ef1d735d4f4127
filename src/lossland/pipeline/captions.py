"""Figure captions that carry their numbers, and the scale a section ran at.

A figure's caption template is ``workflow/report/<family>/<caption>`` (Jinja2). The plot job
renders it with :func:`render` into ``results/captions/<figure>.rst``, which the report
includes under the figure. A template sees:

* ``n``: the figure's numbers, ``{name: formatted text}``, from its caption-numbers
  function (:func:`lossland.plots.caption_numbers`), computed from the same tables the
  figure is drawn from;
* ``scale``: one line saying what the figure's section ran at (:func:`scale`): data set and
  its sizes, models, epochs and what the section analysed;
* ``config``: the checked config.

Undefined names fail the plot job (``StrictUndefined``), so a caption cannot silently lose
a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .runs import training_settings

SOURCES = {"embedded": "the embedded CIFAR-10 subset", "torchvision": "CIFAR-10",
           "imagefolder": "CIFAR-10 images", "python-archive": "CIFAR-10",
           "ptb-embedded": "Penn Treebank as shipped (validation and test splits)", "ptb": "Penn Treebank"}


#: training and test images of the full sources
FULL_SIZES = {"torchvision": (50_000, 10_000), "python-archive": (50_000, 10_000)}


def _tokens(dataset: Mapping[str, Any]) -> str:
    def one(split: str, default: str) -> str:
        n = dataset.get(f"{split}_tokens")
        name = dataset.get(f"{split}_split") or default
        return f"{'the first ' + format(n, ',') if n else 'all'} tokens of {name}"

    vocab = dataset.get("vocab_size")
    train_default = "valid" if dataset["source"] == "ptb-embedded" else "train"
    return (f"training on {one('train', train_default)}, testing on {one('test', 'test')}, "
            f"{'a ' + format(vocab, ',') + '-word' if vocab else 'the full'} vocabulary, "
            f"sequences of {dataset.get('seq_len', 35)}")


def _images(dataset: Mapping[str, Any]) -> str:
    from .config import TEXT_SOURCES

    if dataset["source"] in TEXT_SOURCES:
        return _tokens(dataset)
    full_train, full_test = FULL_SIZES.get(dataset["source"], (None, None))
    val = dataset.get("val_size")
    train = dataset.get("train_size") or (full_train - (val or 0) if full_train else None)
    test = dataset.get("test_size") or full_test
    train_text = f"{train} training" if train else "all training"
    test_text = f"{test} test images" if test else "all test images"
    return f"{train_text}, {test_text}" + (f", {val} for validation" if val else "")


def describe_model(spec: Mapping[str, Any]) -> str:
    """``NIN ×0.25 (depth 3) with BatchNorm``, ``ResNet-56-noshort with BatchNorm``, ``MLP 128-64 (relu)``..."""
    arch = spec["arch"]
    if arch == "lstm":
        return (f"LSTM {spec.get('layers', 1)}×{spec.get('hidden', 200)} (embedding {spec.get('embedding', 200)}"
                + (", tied" if spec.get("tie_weights") else "") + ")")
    if arch == "mlp":
        hidden = "-".join(str(h) for h in spec.get("hidden", []))
        text = f"MLP {hidden} ({spec.get('activation', 'relu')})"
    else:
        if arch == "resnet":
            text = f"ResNet-{spec.get('depth', 20)}" + ("" if spec.get("skip", True) else "-noshort")
        else:
            text = f"{arch.upper()}-{spec.get('depth', 16)}" if arch == "vgg" else f"{arch.upper()}"
        width = float(spec.get("width", 1.0))
        text += "" if width == 1.0 else f" ×{width:g}"
    text += " with BatchNorm" if spec.get("batch_norm", arch != "mlp") else " without BatchNorm"
    init = spec.get("init") or {}
    if init.get("scheme") == "normal":
        text += f", init N({init.get('mean', 0.0):g}, {init.get('std', 1.0):g})"
    return text


def study_of(config: Mapping[str, Any], section: str) -> tuple[str, Mapping[str, Any]]:
    """The section that trained what ``section`` analyses (itself when it trains)."""
    cfg = config[section]
    if "dataset" in cfg or "study" not in cfg:
        return section, cfg
    return cfg["study"], config[cfg["study"]]


def scale(config: Mapping[str, Any], section: str) -> str:
    """One line: what ``section`` ran at, e.g. ``cifar10-small (the embedded CIFAR-10 subset: 1000
    training, 500 test images); nin: NIN ×0.25 with BatchNorm; 4 epochs, batch 64``. A family whose
    sections do not train the shared runs says it itself (its optional ``scale(config, section)``)."""
    from .families import FAMILIES

    for family in FAMILIES:
        if section in family.SECTIONS and hasattr(family, "scale"):
            return family.scale(config, section)
    cfg = config[section]
    study_name, study = study_of(config, section)
    dataset = study["dataset"]
    ds = config["datasets"][dataset]
    models = cfg.get("models") or study.get("models") or []
    training = training_settings(config, study)
    parts = [f"{dataset} ({SOURCES.get(ds['source'], ds['source'])}: {_images(ds)})",
             "; ".join(f"{m}: {describe_model(config['models'][m])}" for m in models),
             f"{training['epochs']} epochs, batch {training['batch_size']}"]
    if study_name != section:
        samples = cfg.get("samples")
        where = cfg.get("split") or "/".join(cfg.get("splits") or []) or "train"
        parts.append(f"{section} on " + (f"{samples} {where} images" if samples else f"the whole {where} split")
                     + f" of {study_name}'s runs")
    return "; ".join(parts)


def render(template: str, numbers: Mapping[str, Any], config: Mapping[str, Any], section: str) -> str:
    """The caption: ``template`` (Jinja2) with ``n``, ``scale`` and ``config`` (module docstring)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template).render(n=dict(numbers), scale=scale(config, section), config=config)
