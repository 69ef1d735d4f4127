"""Hessian spectra (the review: Sagun/Dauphin spectra, negative eigenvalues; Keskar sharpness).

The ``hessian`` section analyses the chosen runs of one study at the initial
weights (epoch 0: one job per data set, model and seed, shared by every
optimizer) and at saved epochs, with :func:`lossland.curvature.report.hessian_report`.
Rules: ``workflow/rules/hessian.smk``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import analysis, paths
from ..family import Config, Figure
from ..runs import saved_epochs
from ..tables import gather

NAME = "hessian"
SECTIONS = ("hessian",)
RUN_SECTIONS = ()
CATEGORY = "Hessian"
WILDCARDS: dict[str, str] = {}
#: the tables of one analysed point, and (prefixed ``hessian_``) of the whole section
POINT_TABLES = ("eigenvalues", "density", "summary")

FIGURES = {
    "hessian_density": Figure("hessian.hessian_density", ("hessian_density",)),
    "hessian_sharpness": Figure("hessian.hessian_sharpness", ("hessian_summary",)),
    "hessian_negative_fraction": Figure("hessian.hessian_negative_fraction", ("hessian_summary",)),
}


def check(config: Config) -> list[str]:
    problems, study = analysis.check_section(config, "hessian")
    if study is None:
        return problems
    cfg = config["hessian"]
    saved = sorted(saved_epochs(config, study))
    for e in cfg.get("epochs") or []:
        if e not in saved:
            problems.append(f"hessian.epochs: epoch {e} is not saved by {cfg['study']}; allowed: "
                            f"{', '.join(map(str, saved))} (see training.checkpoint_every)")
    settings = cfg.get("settings") or {}
    method = settings.get("trace_method", "deflated")
    least = {"deflated": 2, "hutch++": 3}.get(method, 1)
    if settings.get("trace_probes", least) < least:
        problems.append(f"hessian.settings.trace_probes: {settings['trace_probes']} is too few for "
                        f"{method}; allowed: {least} or more")
    if settings.get("trace_tol") is not None and method not in ("deflated", "hutchinson"):
        problems.append(f"hessian.settings.trace_tol: not used by trace_method {method}; allowed: null, "
                        f"or trace_method deflated or hutchinson")
    problems += analysis.check_split(config, "hessian.split", study, [cfg.get("split")])
    return problems


def runs(config: Config) -> list:
    return []


def tables(config: Config) -> list[str]:
    return [f"hessian_{t}" for t in POINT_TABLES] if config.get("hessian") else []


def points(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str]
           ) -> list[tuple[str, dict[str, Any]]]:
    """The analysed points: ``("init", {dataset, model, seed})`` once per initial weights and
    ``("checkpoint", {run, epoch})`` per run and saved epoch, for the chosen runs of the study."""
    cfg = config["hessian"]
    out: list[tuple[str, dict[str, Any]]] = []
    for run in analysis.analysis_runs(cfg, run_table, chosen):
        spec = run_table[run]
        for epoch in cfg["epochs"]:
            point = (("init", {"dataset": spec["dataset"], "model": spec["model"], "seed": int(spec["init_seed"])})
                     if epoch == 0 else ("checkpoint", {"run": run, "epoch": int(epoch)}))
            if point not in out:
                out.append(point)
    return out


def init_ids(dataset: str, model: str, seed: int) -> dict[str, Any]:
    """Identifying columns of the shared initial weights' rows (``run`` empty until gathered)."""
    return {"run": "", "dataset": dataset, "model": model, "optimizer": "", "algorithm": "",
            "lr": float("nan"), "seed": int(seed), "epoch": 0}


def expand_init_rows(frame, runs: list[Mapping[str, Any]]):
    """Give every run its epoch-0 rows.

    The Hessian at the initial weights is computed once per (data set, model, init
    seed) and stored with an empty ``run``; every run starting there gets a copy under
    its own identifying columns (``runs``: dicts with ``run, dataset, model, seed`` and
    the other id columns), so each run's series is complete from epoch 0.
    """
    import pandas as pd

    is_init = frame["run"] == ""
    parts = [frame[~is_init]]
    inits = frame[is_init]
    for ids in runs:
        rows = inits[(inits["dataset"] == ids["dataset"]) & (inits["model"] == ids["model"])
                     & (inits["seed"] == ids["seed"])]
        if len(rows):
            rows = rows.copy()
            for k, v in ids.items():
                rows[k] = v
            parts.append(rows)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["run", "epoch"], kind="stable").reset_index(drop=True)


def point_path(kind: str, key: Mapping[str, Any], table: str) -> str:
    """Where one analysed point's ``table`` lives (``kind``: ``init`` or ``checkpoint``, see :func:`points`)."""
    if kind == "init":
        base = f"{paths.RESULTS}/hessian/init/{key['dataset']}/{key['model']}_init{key['seed']}"
    else:
        base = f"{paths.RESULTS}/hessian/runs/{key['run']}/epoch{key['epoch']}"
    return f"{base}/{table}.parquet"


def point_files(config: Config, run_table: Mapping[str, Mapping[str, Any]], chosen: Sequence[str]
                ) -> dict[str, list[str]]:
    """``{table: [file of every analysed point]}``: the inputs of rule ``gather_hessian``."""
    found = points(config, run_table, chosen)
    return {table: [point_path(kind, key, table) for kind, key in found] for table in POINT_TABLES}


def gather_tables(inputs: Mapping[str, Sequence[str]], outputs: Mapping[str, str], runs: list[Mapping[str, Any]],
                  log: str | None = None) -> None:
    """Rule ``gather_hessian``: each point table of every point in one table, the epoch-0 rows
    copied to every run of that init (:func:`expand_init_rows`)."""
    lines = []
    for t in POINT_TABLES:
        table = gather(inputs[t], outputs[t], partial(expand_init_rows, runs=runs))
        lines.append(f"{outputs[t]}: {len(table)} rows from {len(inputs[t])} points\n")
    if log:
        Path(log).write_text("".join(lines))


def job_settings(config: Config) -> dict[str, Any]:
    """What one point's job depends on besides its weights: ``settings``, ``split``, ``samples``."""
    return {k: config["hessian"][k] for k in ("settings", "split", "samples")}
