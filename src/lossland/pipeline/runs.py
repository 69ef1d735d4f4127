"""Training runs: their specifications, names and the run table.

A *run spec* holds everything that defines a run's results (data set, model
name and spec, optimizer name and spec with its learning rate, init seed, data
seed, resolved training settings), so a change to any of it reruns that run and
only it. Families that train (today the im2016 studies) build specs with
:func:`train_spec`; :func:`merge` joins every family's runs into the one run
table of the workflow (:func:`lossland.pipeline.families.run_table`).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 128,
    "augment": False,
    "eval_batch_size": "auto",
    "channels_last": "auto",
    "drop_last": False,
    "checkpoint_every": 0,
    "checkpoint_epochs": [],
}


class RunConflict(ValueError):
    """Two sections define one run name with different settings."""


def training_settings(config: Mapping[str, Any], section: Mapping[str, Any]) -> dict[str, Any]:
    """Training settings of a section: library defaults <- config `training` <- section `training`."""
    merged = dict(TRAINING_DEFAULTS)
    merged.update(config.get("training") or {})
    merged.update(section.get("training") or {})
    merged["checkpoint_epochs"] = sorted(set(merged.get("checkpoint_epochs") or []))
    return merged


def checkpoint_epochs(training: Mapping[str, Any], extra: Iterable[int] = ()) -> list[int]:
    """Epochs whose checkpoints a run saves: every ``checkpoint_every``-th, the listed ones and ``extra``."""
    epochs = int(training["epochs"])
    every = int(training.get("checkpoint_every") or 0)
    chosen = set(training.get("checkpoint_epochs") or []) | set(extra)
    if every:
        chosen |= set(range(every, epochs + 1, every))
    return sorted(e for e in chosen if 0 <= e <= epochs)


def saved_epochs(config: Mapping[str, Any], section: Mapping[str, Any]) -> set[int]:
    """Epochs whose weights a section's runs keep: 0 (the init), the saved checkpoints, the last."""
    training = training_settings(config, section)
    return set(checkpoint_epochs(training)) | {0, int(training["epochs"])}


def lr_tag(lr: float) -> str:
    """Compact, stable text of a learning rate for run names (0.1 -> '0.1', 1e-4 -> '0.0001')."""
    return f"{float(lr):g}"


def run_name(model: str, optimizer: str, lr: float, init_seed: int) -> str:
    """``<model>_<optimizer>-lr<lr>_init<seed>``: the learning rate is part of a run's name,
    so every value of a grid is its own cached run and a changed rate never overwrites
    the results of the old one."""
    return f"{model}_{optimizer}-lr{lr_tag(lr)}_init{init_seed}"


def learning_rate(spec: Mapping[str, Any]) -> float:
    """An optimizer spec's learning rate, or its algorithm's torch default when it sets none."""
    if "lr" in spec:
        return float(spec["lr"])
    from ..optim import learning_rate as default_rate  # torch only when a spec leaves lr out

    return default_rate(spec)


def train_spec(config: Mapping[str, Any], dataset: str, model: str, optimizer: str, lr: float, seed: int,
               data_seed: int, training: Mapping[str, Any]) -> dict[str, Any]:
    """The spec of one plain run: ``model`` trained by ``optimizer`` at ``lr`` from init ``seed``."""
    return {
        "run": run_name(model, optimizer, lr, seed),
        "kind": "train",
        "dataset": dataset,
        "model": model,
        "model_spec": dict(config["models"][model]),
        "optimizer": optimizer,
        "optimizer_spec": dict(config["optimizers"][optimizer], lr=float(lr)),
        "init_seed": int(seed),
        "data_seed": int(data_seed),
        "training": dict(training),
    }


def algorithm_name(spec: Mapping[str, Any]) -> str:
    """``sgd``, ``rk2-heun(adam)``, or ``sgd->adam`` for a switch run."""
    def one(opt: Mapping[str, Any]) -> str:
        if opt["algorithm"] == "rk2":
            return f"rk2-{opt.get('method', 'heun')}({opt.get('base', 'sgd')})"
        return opt["algorithm"]

    if spec.get("kind") == "switch":
        return f"{one(spec['first_spec'])}->{one(spec['optimizer_spec'])}"
    return one(spec["optimizer_spec"])


def run_ids(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The columns that identify a run in analysis tables."""
    return {"run": spec["run"], "dataset": spec["dataset"], "model": spec["model"],
            "optimizer": spec["optimizer"], "algorithm": algorithm_name(spec),
            "lr": learning_rate(spec["optimizer_spec"]), "seed": int(spec["init_seed"])}


def _without_checkpoints(spec: Mapping[str, Any]) -> dict:
    out = dict(spec)
    out["training"] = {k: v for k, v in spec["training"].items() if k != "checkpoint_epochs"}
    return out


def merge(by_section: Iterable[tuple[str, Iterable[Mapping[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """``{run name: spec}`` from ``(section, specs)`` pairs.

    A run asked for by several sections is trained once; its checkpoint epochs are
    the union of the requests. Two sections asking for one name with different
    definitions raise :class:`RunConflict`.
    """
    table: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for section, specs in by_section:
        for spec in specs:
            name = spec["run"]
            if name not in table:
                table[name], owner[name] = dict(spec, training=dict(spec["training"])), section
                continue
            if _without_checkpoints(table[name]) != _without_checkpoints(spec):
                raise RunConflict(
                    f"{section}: run {name!r} is also defined by {owner[name]} with other settings "
                    f"(training or data seed differ); give one of the sections other optimizer or model "
                    f"names, or the same settings")
            merged = sorted(set(table[name]["training"]["checkpoint_epochs"])
                            | set(spec["training"]["checkpoint_epochs"]))
            table[name]["training"]["checkpoint_epochs"] = merged
    return table


def inits(run_table: Mapping[str, Mapping[str, Any]]) -> set[tuple[str, str, int]]:
    """The ``(dataset, model, init seed)`` triples whose initial weights the runs need."""
    return {(r["dataset"], r["model"], r["init_seed"]) for r in run_table.values()}


def undefined_refs(key: str, values: Iterable[str], defined: Mapping[str, Any], kind: str) -> list[str]:
    """One problem per name of ``values`` (config key ``key``) that is not a defined ``kind``."""
    return [f"{key}: {kind} {v!r} is not defined; allowed (the defined {kind}s): {', '.join(sorted(defined))}"
            for v in values if v not in defined]


def check_training(config: Mapping[str, Any], name: str, section: Mapping[str, Any]) -> list[str]:
    """Problems of a training section's resolved settings (checkpoints past the last epoch)."""
    training = training_settings(config, section)
    return [f"training.checkpoint_epochs: epoch {e} is past the last epoch ({training['epochs']}) of {name}; "
            f"allowed: 0..{training['epochs']}"
            for e in training["checkpoint_epochs"] if e > training["epochs"]]


def check_models_fit_data(config: Mapping[str, Any], name: str, section: Mapping[str, Any]) -> list[str]:
    """Problems of a section's models on its data set (a binary head needs two classes; VGG needs 32 px;
    a ResNet takes any image size)."""
    ds = config["datasets"].get(section["dataset"])
    if ds is None:
        return []
    problems = []
    classes = len(ds.get("classes") or range(10))
    for mname in section["models"]:
        spec = config["models"].get(mname)
        if spec and spec.get("binary") and classes != 2:
            problems.append(f"models.{mname}.binary: needs a two-class data set; "
                            f"datasets.{section['dataset']}.classes has {classes}")
        if spec and spec["arch"] == "vgg" and (ds.get("image_size") or 32) < 32:
            problems.append(f"models.{mname}: vgg needs images of at least 32 pixels; "
                            f"datasets.{section['dataset']}.image_size is {ds.get('image_size')}")
    return problems
