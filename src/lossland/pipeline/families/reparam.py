"""dinh2017, "Sharp minima can generalize": function-preserving reparametrisations move
every sharpness measure without bound.

The ``reparam`` section trains its own runs (a ReLU net without BatchNorm for the α-scale
and weight-norm sweeps, a BatchNorm net for BatchNorm's own scale invariance; a run that
another section also trains is trained once) and, at one saved epoch of each run, sweeps
``α`` over ``10^log10_alpha``:

* ``alpha_scale`` (models without BatchNorm): each layer pair of ``alpha_scale``
  (:func:`lossland.alpha_scale`);
* ``weight_norm`` (models without BatchNorm, when ``weight_norm`` is true): the model
  weight-normalised with ``v`` scaled by ``α`` (:func:`lossland.weight_normalize`);
* ``bn_scale`` (models with BatchNorm): each layer of ``bn_scale`` that feeds a BatchNorm
  (:func:`lossland.bn_scale`);
* ``input`` (every model): the input scaled by ``α`` and the ``input`` transforms
  (:func:`lossland.input_reparametrization_sweep`).

Rules: ``workflow/rules/reparam.smk``; tables ``reparam_sweep``, ``reparam_blocks``,
``reparam_spread``, ``reparam_input``, ``reparam_input_examples``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import paths
from .. import runs as R
from ..family import Config, Figure
from ..tables import gather

NAME = "reparam"
SECTIONS = ("reparam",)
RUN_SECTIONS = ("reparam",)
CATEGORY = "Sharp minima can generalize (dinh2017)"
TRANSFORMS = ("alpha_scale", "bn_scale", "weight_norm")
WILDCARDS = {"transform": "|".join(TRANSFORMS), "layers": r"[0-9]+(-[0-9]+)?|all"}
#: the tables of one sweep job and of one input job
SWEEP_TABLES = ("sweep", "blocks")
INPUT_TABLES = ("input", "input_examples")
TABLES = tuple(f"reparam_{t}" for t in (*SWEEP_TABLES, "spread", *INPUT_TABLES))
#: measures whose spread over the sweep the ``reparam_spread`` table records
SPREAD_MEASURES = ("top_eigenvalue", "trace", "epsilon_sharpness", "ball_sharpness", "test_loss")

FIGURES = {
    "dinh_alpha_scale": Figure("reparam.alpha_scale_sharpness", ("reparam_sweep",)),
    "dinh_reparametrizations": Figure("reparam.weight_norm_and_input",
                                      ("reparam_sweep", "reparam_input", "reparam_input_examples")),
}


# --------------------------------------------------------------------------- config


def has_batchnorm(config: Config, model: str) -> bool:
    """Whether model ``model`` of the config has BatchNorm (NIN, VGG and ResNet by default, MLP not)."""
    spec = config["models"][model]
    return bool(spec.get("batch_norm", spec["arch"] != "mlp"))


def _input_shape(config: Config, dataset: str) -> tuple[tuple[int, int, int], int]:
    ds = config["datasets"].get(dataset) or {}
    size = int(ds.get("image_size") or 32)
    return (3, size, size), len(ds.get("classes") or range(10))


def _built(config: Config, model: str):
    from ...models import build_model

    shape, classes = _input_shape(config, config["reparam"]["dataset"])
    spec = config["models"][model]
    return build_model(spec, shape, 2 if spec.get("binary") else classes)


def _check_layers(config: Config, cfg: Mapping[str, Any], models: list[str], bn: bool) -> list[str]:
    from ...reparam import ReparamError, bn_layers, check_alpha_pair, check_bn_layer, homogeneous_pairs, layer_names

    key = "bn_scale" if bn else "alpha_scale"
    chosen = [m for m in models if has_batchnorm(config, m) == bn]
    if cfg.get(key) and not chosen:
        return [f"reparam.{key}: no model of reparam.models {'has' if bn else 'is without'} BatchNorm; allowed: "
                f"[] or a model with batch_norm: {'true' if bn else 'false'}"]
    problems = []
    for m in chosen:
        try:
            model = _built(config, m).eval()
        except (ValueError, KeyError, TypeError):  # a bad model spec: reported by the models' own check
            continue
        for i, entry in enumerate(cfg.get(key) or []):
            try:
                check_bn_layer(model, entry) if bn else check_alpha_pair(model, entry)
            except ReparamError as exc:
                if bn:
                    allowed = ", ".join(map(str, bn_layers(model))) or "none"
                else:
                    allowed = ", ".join(f"[{a}, {b}]" for a, b in homogeneous_pairs(model)) or "none"
                problems.append(f"reparam.{key}[{i}]: {entry!r} for model {m} ({len(layer_names(model))} "
                                f"Linear/Conv layers): {exc}; allowed: {allowed}")
    return problems


def check(config: Config) -> list[str]:
    cfg = config.get("reparam")
    if not cfg:
        return []
    problems: list[str] = []
    for key, values, kind in (("dataset", [cfg["dataset"]], "dataset"), ("models", cfg["models"], "model"),
                              ("optimizers", cfg["optimizers"], "optimizer")):
        problems += R.undefined_refs(f"reparam.{key}", values, config[f"{kind}s"], kind)
    if problems:
        return problems
    problems += R.check_training(config, "reparam", cfg)
    problems += R.check_models_fit_data(config, "reparam", cfg)
    saved = sorted(R.saved_epochs(config, cfg))
    if cfg.get("epoch") is not None and cfg["epoch"] not in saved:
        problems.append(f"reparam.epoch: epoch {cfg['epoch']} is not saved by reparam's runs; allowed: "
                        f"{', '.join(map(str, saved))} (see training.checkpoint_every)")
    if cfg.get("split") == "val" and not config["datasets"][cfg["dataset"]].get("val_size"):
        problems.append(f"reparam.split: 'val' needs datasets.{cfg['dataset']}.val_size; allowed: train, test")
    settings = cfg.get("settings") or {}
    if settings.get("trace_method", "deflated") == "deflated" and settings.get("trace_probes", 2) < 2:
        problems.append(f"reparam.settings.trace_probes: {settings['trace_probes']} is too few for deflated; "
                        f"allowed: 2 or more")
    problems += _check_layers(config, cfg, cfg["models"], bn=False)
    problems += _check_layers(config, cfg, cfg["models"], bn=True)
    return problems


def _training(config: Config) -> dict[str, Any]:
    training = R.training_settings(config, config["reparam"])
    training["checkpoint_epochs"] = R.checkpoint_epochs(training)
    return training


def runs(config: Config) -> list[tuple[str, list[dict[str, Any]]]]:
    cfg = config.get("reparam")
    if not cfg:
        return []
    training = _training(config)
    specs = [R.train_spec(config, cfg["dataset"], model, opt, R.learning_rate(config["optimizers"][opt]), seed,
                          cfg["data_seed"], training)
             for model in cfg["models"] for opt in cfg["optimizers"] for seed in cfg["init_seeds"]]
    return [("reparam", specs)]


def tables(config: Config) -> list[str]:
    return list(TABLES) if config.get("reparam") else []


def analysed_epoch(config: Config) -> int:
    cfg = config["reparam"]
    return int(cfg["epoch"]) if cfg.get("epoch") is not None else int(_training(config)["epochs"])


# --------------------------------------------------------------------------- jobs


def layers_tag(transform: str, layers: Sequence[int] | int | None) -> str:
    """The ``{layers}`` wildcard of a sweep: ``0-1`` (a pair), ``0`` (one layer), ``all``."""
    if transform == "weight_norm":
        return "all"
    return "-".join(str(int(k)) for k in layers) if transform == "alpha_scale" else str(int(layers))


def parse_layers(transform: str, tag: str) -> list[int] | int | None:
    """Inverse of :func:`layers_tag`."""
    if transform == "weight_norm":
        return None
    values = [int(k) for k in tag.split("-")]
    return values if transform == "alpha_scale" else values[0]


def sweeps(config: Config, run_table: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """``(run, transform, layers tag)`` of every sweep job."""
    cfg = config["reparam"]
    out = []
    for run in section_runs(config, run_table):
        if has_batchnorm(config, run_table[run]["model"]):
            out += [(run, "bn_scale", layers_tag("bn_scale", k)) for k in cfg.get("bn_scale") or []]
        else:
            out += [(run, "alpha_scale", layers_tag("alpha_scale", p)) for p in cfg.get("alpha_scale") or []]
            if cfg.get("weight_norm"):
                out.append((run, "weight_norm", "all"))
    return out


def section_runs(config: Config, run_table: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The runs of the ``reparam`` section (in the run table's order)."""
    return [spec["run"] for _, specs in runs(config) for spec in specs if spec["run"] in run_table]


def job_dir(run: str, epoch: int | str) -> str:
    return f"{paths.RESULTS}/reparam/{run}/epoch{epoch}"


def sweep_path(run: str, epoch: int | str, transform: str, layers: str, table: str) -> str:
    """Where one sweep job's ``table`` (``sweep`` or ``blocks``) lives."""
    return f"{job_dir(run, epoch)}/{transform}_{layers}_{table}.parquet"


def input_path(run: str, epoch: int | str, table: str) -> str:
    """Where one input job's ``table`` (``input`` or ``input_examples``) lives."""
    return f"{job_dir(run, epoch)}/{table}.parquet"


def job_files(config: Config, run_table: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """``{table: [file of every job]}``: the inputs of rule ``gather_reparam``."""
    epoch = analysed_epoch(config)
    out = {t: [sweep_path(r, epoch, tr, lay, t) for r, tr, lay in sweeps(config, run_table)] for t in SWEEP_TABLES}
    out.update({t: [input_path(r, epoch, t) for r in section_runs(config, run_table)] for t in INPUT_TABLES})
    return out


def alphas(config: Config) -> list[float]:
    """The swept ``α = 10^v`` for the ``log10_alpha`` grid."""
    import numpy as np

    grid = config["reparam"]["log10_alpha"]
    return [float(10.0 ** e) for e in np.linspace(grid["start"], grid["stop"], int(grid["num"]))]


def job_settings(config: Config, job: str) -> dict[str, Any]:
    """What a ``sweep`` or an ``input`` job depends on besides its weights (and transform), so
    that a change reruns only the jobs it touches."""
    cfg = config["reparam"]
    if job == "sweep":
        return {"alphas": alphas(config), "settings": dict(cfg.get("settings") or {}), "split": cfg["split"],
                "samples": cfg["samples"]}
    return {"alphas": alphas(config), "input": list(cfg.get("input") or []), "whiten_eps": cfg["whiten_eps"],
            "input_samples": cfg["input_samples"]}


# --------------------------------------------------------------------------- tables


def spread_table(sweep):
    """Per sweep (run, transform, layers) and measure: the smallest and largest value over
    ``α``, the spread (largest over smallest magnitude), whether the sign changes, and the
    sweep's largest output difference (absolute and relative to the largest output)."""
    import numpy as np
    import pandas as pd

    rows = []
    keys = ["run", "model", "transform", "layers", "scaled"]
    for key, part in sweep.groupby(keys, sort=False):
        for measure in SPREAD_MEASURES:
            v = part[measure].to_numpy(float)
            v = v[np.isfinite(v)]
            if not len(v):
                continue
            mag = np.abs(v)
            rows.append({**dict(zip(keys, key)), "measure": measure, "min": float(v.min()), "max": float(v.max()),
                         "spread": float(mag.max() / mag.min()) if mag.min() > 0 else float("inf"),
                         "sign_changes": bool((v > 0).any() and (v < 0).any()),
                         "alpha_min": float(part["alpha"].min()), "alpha_max": float(part["alpha"].max()),
                         "max_output_diff": float(part["max_output_diff"].max()),
                         "rel_output_diff": float(part["rel_output_diff"].max())})
    return pd.DataFrame(rows)


def gather_tables(inputs: Mapping[str, Sequence[str]], outputs: Mapping[str, str], log: str | None = None) -> None:
    """Rule ``gather_reparam``: every job's tables in one table each, and the spread table."""
    lines = []
    for t in (*SWEEP_TABLES, *INPUT_TABLES):
        table = gather(inputs[t], outputs[f"reparam_{t}"])
        lines.append(f"{outputs[f'reparam_{t}']}: {len(table)} rows from {len(inputs[t])} jobs\n")
        if t == "sweep":
            spread = gather(inputs[t], outputs["reparam_spread"], spread_table)
            lines.append(f"{outputs['reparam_spread']}: {len(spread)} rows\n")
    if log:
        Path(log).write_text("".join(lines))


# --------------------------------------------------------------------------- findings


def _sharpness_moves(tables: Mapping[str, Any], config: Config):
    """Orders of magnitude the top eigenvalue moves over each α-scale sweep, and the largest
    relative output change of those sweeps."""
    import numpy as np

    from .. import findings as FD

    spread = tables["reparam_spread"]
    top = spread[(spread["transform"] == "alpha_scale") & (spread["measure"] == "top_eigenvalue")]
    if top.empty:
        return FD.not_run("no alpha-scale sweep (needs a model without BatchNorm in reparam.models)")
    orders = np.log10(top["max"].to_numpy(float) / top["min"].to_numpy(float))
    output = float(top["rel_output_diff"].max())
    value = float(orders.min())
    return FD.Measured(value, FD.verdict(value >= 2.0 and output <= 1e-3),
                       f"{len(orders)} sweeps; largest relative output change {output:.2g}")


def _findings():
    from ..findings import Finding

    return (
        Finding("sharpness_not_function", "Reparametrising moves sharpness by orders of magnitude, not the function",
                "dinh2017 §4-5",
                "orders of magnitude (log10 max/min) the top Hessian eigenvalue moves over an α-scale sweep "
                "(the smallest over sweeps)",
                "reproduced if at least 2 orders while the outputs change by at most 1e-3 (relative)",
                ("reparam_spread",), _sharpness_moves, "reparam"),
    )


FINDINGS = _findings()
