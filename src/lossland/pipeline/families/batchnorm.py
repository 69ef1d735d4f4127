"""im2016 §4.4, Table 2 and Fig 8: the loss between minima with and without batch normalisation.

The ``bn_study`` section trains every model of each *architecture* (NIN and VGG with
and without BatchNorm, the LSTM on Penn Treebank) with every optimizer from shared
initial weights and one minibatch order, several init seeds, and draws im2016's
1-D lines: init→final for every run and final→final between every two optimizers'
solutions of one init. :func:`lossland.landscape.line_shape` turns the paper's
qualitative claims into numbers per model: the spread of the final training loss
across inits, and the local maxima, barrier and barrier width along final→final.

Runs are the shared run table's (a run another study trains, e.g. ``nin`` by SGD
in ``optimizer_study``, is trained once). One line job per (architecture, model,
init seed) holds all of that init's lines. Rules: ``workflow/rules/batchnorm.smk``.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

from .. import paths
from .. import runs as R
from ..family import Config, Figure

NAME = "batchnorm"
SECTION = "bn_study"
SECTIONS = (SECTION,)
RUN_SECTIONS = SECTIONS
CATEGORY = "Optimizers"
WILDCARDS = {"architecture": "[A-Za-z0-9][A-Za-z0-9.-]*"}
LINE_KINDS = ("init_final", "final_final")
TABLES = ("bn_study_metrics", "bn_study_lines", "bn_study_summary")
#: the train-split loss at the last epoch is what "the quality of the minimum" is read from
QUALITY_SPLIT = "train"

FIGURES = {
    "table2_bn_lines": Figure("batchnorm.bn_lines", ("bn_study_lines", "bn_study_summary")),
    "fig8_bn_minima": Figure("batchnorm.bn_minima", ("bn_study_summary", "bn_study_metrics")),
}


def architectures(config: Config) -> dict[str, dict[str, Any]]:
    """``{architecture: {dataset, models, optimizers, training}}`` with the section's defaults filled in."""
    cfg = config.get(SECTION) or {}
    out = {}
    for name, arch in (cfg.get("architectures") or {}).items():
        out[name] = {"dataset": arch["dataset"], "models": list(arch["models"]),
                     "optimizers": list(arch.get("optimizers") or cfg["optimizers"]),
                     "training": {**(cfg.get("training") or {}), **(arch.get("training") or {})}}
    return out


# --------------------------------------------------------------------------- checks


def check(config: Config) -> list[str]:
    cfg = config.get(SECTION)
    if not cfg:
        return []
    from ...models import has_batch_norm
    from ..config import TEXT_SOURCES

    problems: list[str] = []
    for name, arch in architectures(config).items():
        key = f"{SECTION}.architectures.{name}"
        problems += R.undefined_refs(f"{key}.dataset", [arch["dataset"]], config["datasets"], "dataset")
        problems += R.undefined_refs(f"{key}.models", arch["models"], config["models"], "model")
        problems += R.undefined_refs(f"{key}.optimizers" if "optimizers" in cfg["architectures"][name]
                                     else f"{SECTION}.optimizers", arch["optimizers"], config["optimizers"],
                                     "optimizer")
        if len(arch["optimizers"]) < 2:
            problems.append(f"{key}.optimizers: final→final lines need two or more optimizers; "
                            f"allowed: a list of two or more defined optimizers")
        problems += R.check_training(config, key, {"training": arch["training"]})
        problems += R.check_models_fit_data(config, key, arch)
        specs = {m: config["models"][m] for m in arch["models"] if m in config["models"]}
        text = config["datasets"].get(arch["dataset"], {}).get("source") in TEXT_SOURCES
        for m, spec in specs.items():
            if (spec["arch"] == "lstm") != text:
                problems.append(f"{key}.models: {m} (arch {spec['arch']}) does not fit data set "
                                f"{arch['dataset']}; allowed: lstm models on a ptb or ptb-embedded data set, "
                                f"image models on an image data set")
        flags = [has_batch_norm(s) for s in specs.values()]
        if len(specs) > 2 or (len(specs) == 2 and len(set(flags)) != 2):
            problems.append(f"{key}.models: {', '.join(arch['models'])}; allowed: one model, or two of which "
                            f"exactly one has BatchNorm (with, without)")
    return problems


# --------------------------------------------------------------------------- runs


def _specs(config: Config) -> list[tuple[str, dict[str, Any]]]:
    cfg = config[SECTION]
    out = []
    for name, arch in architectures(config).items():
        training = R.training_settings(config, {"training": arch["training"]})
        training["checkpoint_epochs"] = R.checkpoint_epochs(training)
        for model in arch["models"]:
            for opt in arch["optimizers"]:
                lr = R.learning_rate(config["optimizers"][opt])
                for seed in cfg["init_seeds"]:
                    out.append((name, R.train_spec(config, arch["dataset"], model, opt, lr, seed,
                                                   cfg["data_seed"], training)))
    return out


def section_specs(config: Config) -> list[dict[str, Any]]:
    """Every run of the section, architecture by architecture, in config order."""
    return [spec for _, spec in _specs(config)] if config.get(SECTION) else []


def runs(config: Config) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(SECTION, section_specs(config))] if config.get(SECTION) else []


def tables(config: Config) -> list[str]:
    return list(TABLES) if config.get(SECTION) else []


def groups(config: Config) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """``{(architecture, model, seed): [run specs, one per optimizer]}``: one line job each."""
    out: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for name, spec in _specs(config):
        out.setdefault((name, spec["model"], int(spec["init_seed"])), []).append(spec)
    return out


def _last(spec: Mapping[str, Any]) -> int:
    return int(spec["training"]["epochs"])


# --------------------------------------------------------------------------- the line jobs


def lines_path(architecture: str, model: str, seed: int | str) -> str:
    return f"{paths.RESULTS}/bn_study/{architecture}/{model}_init{seed}.parquet"


def line_inputs(config: Config, architecture: str, model: str, seed: int) -> dict[str, str]:
    """``data``, ``init`` (the shared initial weights) and ``w<i>``: each optimizer's final weights."""
    specs = groups(config)[(architecture, model, int(seed))]
    out = {"data": paths.prepared_data(specs[0]["dataset"]), "init": paths.weights(specs[0], 0)}
    out.update({f"w{i}": paths.weights(s, _last(s)) for i, s in enumerate(specs)})
    return out


def line_params(config: Config, architecture: str, model: str, seed: int) -> dict[str, Any]:
    """What one line job depends on: the runs (name, optimizer, last epoch), the axes, the data."""
    from ...models import has_batch_norm

    cfg = config[SECTION]
    specs = groups(config)[(architecture, model, int(seed))]
    return {"ids": {"architecture": architecture, "dataset": specs[0]["dataset"], "model": model,
                    "batch_norm": has_batch_norm(specs[0]["model_spec"]), "seed": int(seed)},
            "runs": [{"run": s["run"], "optimizer": s["optimizer"], "epoch": _last(s)} for s in specs],
            "splits": list(cfg["splits"]), "samples": cfg["samples"], "bn": cfg["bn"],
            "init_final": dict(cfg["init_final"]), "final_final": dict(cfg["final_final"])}


def line_ends(n_runs: int) -> list[tuple[str, int | None, int]]:
    """``(kind, start, end)`` of one job's lines: init→final for each of ``n_runs`` runs
    (start None: the init), then final→final for every two runs."""
    return ([("init_final", None, i) for i in range(n_runs)]
            + [("final_final", i, j) for i, j in itertools.combinations(range(n_runs), 2)])


def evaluate_lines(model, init: Mapping, finals: Sequence[Mapping], data: Mapping[str, tuple],
                   p: Mapping[str, Any], progress=None):
    """One job's table: init→final for every run and final→final for every pair of runs, on every
    split of ``data``; columns ``kind, <ids>, start, end, start_optimizer, end_optimizer, alpha,
    split, loss, accuracy, diverged`` (a line with a non-finite end is flagged, not skipped)."""
    import numpy as np
    import pandas as pd
    import torch

    from ... import landscape as L
    from ..tables import with_ids

    def is_finite_state(state: Mapping) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point())

    def axis(spec):
        return np.linspace(float(spec["start"]), float(spec["stop"]), int(spec["num"]))

    runs = list(p["runs"])
    finite = [is_finite_state(s) for s in finals]
    frames = []
    for kind, i, j in line_ends(len(runs)):
        start = init if i is None else finals[i]
        for split in p["splits"]:
            df = L.interpolate(model, start, finals[j], axis(p[kind]), data[split], bn=p["bn"])
            df.insert(0, "split", split)
            frames.append(with_ids(df, {
                "kind": kind, **p["ids"],
                "start": "init" if i is None else runs[i]["run"], "end": runs[j]["run"],
                "start_optimizer": "init" if i is None else runs[i]["optimizer"],
                "end_optimizer": runs[j]["optimizer"],
                "diverged": not (finite[j] and (i is None or finite[i]))}))
        if progress is not None:
            progress.update(1)
    out = pd.concat(frames, ignore_index=True)
    first = ["kind", *p["ids"], "start", "end", "start_optimizer", "end_optimizer", "alpha", "split"]
    return out[first + [c for c in out.columns if c not in first]]


# --------------------------------------------------------------------------- gathering


def metrics_files(config: Config) -> list[str]:
    return [paths.run_metrics(s["run"]) for s in section_specs(config)]


def gather_inputs(config: Config) -> dict[str, list[str]]:
    return {"metrics": metrics_files(config),
            "lines": [lines_path(a, m, s) for (a, m, s) in groups(config)]}


def run_architectures(config: Config) -> dict[str, str]:
    """``{run: architecture}`` of the section's runs."""
    return {spec["run"]: name for name, spec in _specs(config)}


def metrics_table(metrics, architecture_of: Mapping[str, str], batch_norm_of: Mapping[str, bool]):
    """The runs' per-epoch metrics with ``architecture`` and ``batch_norm`` after ``run``."""
    out = metrics.copy()
    out.insert(1, "architecture", out["run"].map(architecture_of))
    out.insert(2, "batch_norm", out["model"].map(batch_norm_of).astype(bool))
    return out


def summary_table(metrics, lines, rel_tol: float = 0.01):
    """One row per (architecture, model): the spread of the final training loss across inits
    (per optimizer, then averaged) and the shape of the final→final train-loss lines
    (:func:`lossland.landscape.line_shape`); columns as the README lists them."""
    import numpy as np
    import pandas as pd

    from ...landscape.shape import NO_SHAPE, line_shape

    last = metrics[metrics["epoch"] == metrics.groupby("run")["epoch"].transform("max")]
    loss = last[f"{QUALITY_SPLIT}_loss"].where(np.isfinite(last[f"{QUALITY_SPLIT}_loss"]), np.inf)
    last = last.assign(quality=loss)
    pairs = lines[(lines["kind"] == "final_final") & (lines["split"] == QUALITY_SPLIT)]
    rows = []
    for (arch, model), runs in last.groupby(["architecture", "model"], sort=False):
        # a diverged run counts as infinitely worse: its optimizer's spread is infinite
        spread = runs.groupby("optimizer")["quality"].agg(
            lambda v: float(v.max() - v.min()) if np.isfinite(v).all() else np.inf)
        finite_runs = runs[np.isfinite(runs["quality"])]
        # a line flagged diverged (an end with a non-finite weight or buffer) has no shape, even
        # where its losses came out finite (BatchNorm statistics recomputed over NaN buffers)
        shapes = [line_shape(g["alpha"], g["loss"], rel_tol) if not g["diverged"].any() else NO_SHAPE
                  for _, g in pairs[(pairs["architecture"] == arch) & (pairs["model"] == model)]
                  .groupby(["seed", "start", "end"], sort=False)]
        shapes = pd.DataFrame(shapes, columns=["local_maxima", "barrier", "barrier_width"])
        ok = shapes.dropna()
        ppl = (finite_runs["test_perplexity"] if "test_perplexity" in finite_runs else pd.Series(dtype=float))
        rows.append({
            "architecture": arch, "dataset": runs["dataset"].iloc[0], "model": model,
            "batch_norm": bool(runs["batch_norm"].iloc[0]),
            "inits": int(runs["seed"].nunique()), "optimizers": int(runs["optimizer"].nunique()),
            "final_loss_mean": float(finite_runs["quality"].mean()) if len(finite_runs) else np.nan,
            "final_loss_spread": float(spread.mean()), "final_loss_spread_max": float(spread.max()),
            "final_test_acc_mean": float(finite_runs["test_acc"].mean()) if len(finite_runs) else np.nan,
            "final_test_perplexity_mean": float(ppl.mean()) if len(ppl.dropna()) else np.nan,
            "pair_lines": int(len(shapes)),
            "local_maxima_mean": float(ok["local_maxima"].mean()) if len(ok) else np.nan,
            "unimodal_share": float((ok["local_maxima"] == 1).mean()) if len(ok) else np.nan,
            "barrier_mean": float(ok["barrier"].mean()) if len(ok) else np.nan,
            "barrier_width_mean": float(ok["barrier_width"].mean()) if len(ok) else np.nan,
            "diverged_runs": int(runs["diverged"].astype(bool).sum()),
        })
    return pd.DataFrame(rows)


def gather_tables(inputs: Mapping[str, Sequence[str]], outputs: Mapping[str, str],
                  architecture_of: Mapping[str, str], batch_norm_of: Mapping[str, bool], rel_tol: float,
                  log: str | None = None) -> None:
    """Rule ``gather_bn_study``: the runs' metrics, every line, and the summary."""
    from pathlib import Path

    from ... import io
    from ..tables import gather

    metrics = gather(inputs["metrics"], outputs["bn_study_metrics"],
                     lambda t: metrics_table(t, architecture_of, batch_norm_of))
    lines = gather(inputs["lines"], outputs["bn_study_lines"])
    summary = summary_table(metrics, lines, rel_tol)
    io.write_parquet(summary, outputs["bn_study_summary"],
                     io.provenance({"metrics": list(inputs["metrics"]), "lines": list(inputs["lines"]),
                                    "rel_tol": rel_tol}))
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(f"{len(metrics)} metrics rows, {len(lines)} line rows, {len(summary)} models\n")


# --------------------------------------------------------------------------- the caption's scale


def scale(config: Config, section: str) -> str:
    """The caption's scale line (:func:`lossland.pipeline.captions.scale`): per architecture its
    data, models, optimizers and epochs; the lines' points and data."""
    from ..captions import SOURCES, _images, describe_model

    cfg = config[SECTION]
    parts = []
    for name, arch in architectures(config).items():
        ds = config["datasets"][arch["dataset"]]
        training = R.training_settings(config, {"training": arch["training"]})
        models = "; ".join(f"{m}: {describe_model(config['models'][m])}" for m in arch["models"])
        parts.append(f"{name.upper()} on {arch['dataset']} ({SOURCES.get(ds['source'], ds['source'])}: "
                     f"{_images(ds)}), {models}; {', '.join(arch['optimizers'])}; {training['epochs']} epochs "
                     f"at batch {training['batch_size']}")
    samples = f"{cfg['samples']} samples" if cfg["samples"] else "the whole split"
    return (" | ".join(parts) + f"; init seeds {', '.join(str(s) for s in cfg['init_seeds'])}; lines of "
            f"{cfg['init_final']['num']} (init→final) and {cfg['final_final']['num']} (final→final) points on "
            f"{samples} of {'/'.join(cfg['splits'])}")


# --------------------------------------------------------------------------- findings


def _paired(summary, column: str):
    """``{architecture: (with BN, without BN)}`` of ``column`` for architectures with both models."""
    out = {}
    for arch, rows in summary.groupby("architecture", sort=False):
        flags = dict(zip(rows["batch_norm"].astype(bool), rows[column]))
        if set(flags) == {True, False}:
            out[arch] = (float(flags[True]), float(flags[False]))
    return out


def _smallest(gaps: Mapping[str, float]) -> float:
    """The smallest gap, NaN when any is NaN (an architecture whose number is undefined)."""
    import math

    return math.nan if any(math.isnan(g) for g in gaps.values()) else min(gaps.values())


def _init_dependence(tables: Mapping[str, Any], config: Config):
    import math

    from .. import findings as FD

    summary = tables["bn_study_summary"]
    if (summary["inits"] < 2).all():
        return FD.not_run("needs two or more init seeds")
    pairs = _paired(summary, "final_loss_spread")
    if not pairs:
        return FD.not_run("needs an architecture with and without BatchNorm")
    value = _smallest({a: without - with_bn for a, (with_bn, without) in pairs.items()})
    detail = "; ".join(f"{a.upper()}: spread with BN {w:.3g}, without {wo:.3g} nats"
                       for a, (w, wo) in pairs.items())
    if math.isnan(value):
        return FD.Measured(value, FD.NOT_REPRODUCED, detail + " (a spread is undefined)")
    return FD.Measured(value, FD.verdict(value > 0), detail + " (a diverged run counts as infinite loss)")


def _bumpy_without_bn(tables: Mapping[str, Any], config: Config):
    import math

    from .. import findings as FD

    summary = tables["bn_study_summary"]
    pairs = _paired(summary, "local_maxima_mean")
    if not pairs or (summary["pair_lines"] < 1).all():
        return FD.not_run("needs an architecture with and without BatchNorm and two or more optimizers")
    widths = _paired(summary, "barrier_width_mean")
    value = _smallest({a: without - with_bn for a, (with_bn, without) in pairs.items()})
    detail = "; ".join(f"{a.upper()}: local maxima per final→final line with BN {w:.3g}, without {wo:.3g}; "
                       f"barrier width {widths[a][0]:.2f} vs {widths[a][1]:.2f}" for a, (w, wo) in pairs.items())
    if math.isnan(value):
        return FD.Measured(value, FD.NOT_REPRODUCED, detail + " (a line has a diverged end)")
    return FD.Measured(value, FD.verdict(value > 0), detail)


def _findings():
    from ..findings import Finding

    return (
        Finding("bn_minimum_depends_on_init",
                "Without BatchNorm the quality of the minimum found depends much more on the initialisation",
                "im2016 §4.4, Table 2, Fig 8",
                "spread (max − min over init seeds, averaged over optimizers) of the final training loss "
                "without BatchNorm minus the spread with it; the smallest over architectures",
                "reproduced if above 0 for every architecture run with and without BatchNorm",
                ("bn_study_summary",), _init_dependence, SECTION),
        Finding("bn_final_final_unimodal",
                "Between minima the loss is a sharp unimodal jump with BatchNorm, wide and bumpy without",
                "im2016 §4.4, Table 2, Fig 8",
                "mean number of local maxima of the training loss along the final→final lines without "
                "BatchNorm minus with it (prominence ≥ 1 % of the line's range); the smallest over architectures",
                "reproduced if above 0 for every architecture run with and without BatchNorm",
                ("bn_study_summary",), _bumpy_without_bn, SECTION),
    )


FINDINGS = _findings()
