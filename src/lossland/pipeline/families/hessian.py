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


# --------------------------------------------------------------------------- findings


def _last_epochs(summary):
    return summary[summary["epoch"] == summary.groupby("run")["epoch"].transform("max")]


def _bulk_near_zero(tables: Mapping[str, Any], config: Config):
    """Share of the SLQ density within ±5 % of the top eigenvalue around zero, at each run's
    last analysed epoch."""
    import numpy as np

    from .. import findings as FD

    summary, density = tables["hessian_summary"], tables["hessian_density"]
    shares = []
    for row in _last_epochs(summary).itertuples():
        curve = density[(density["run"] == row.run) & (density["epoch"] == row.epoch)].sort_values("eigenvalue")
        lam, rho = curve["eigenvalue"].to_numpy(float), curve["density"].to_numpy(float)
        integrate = getattr(np, "trapezoid", None) or np.trapz   # numpy < 2 has only trapz
        total = integrate(rho, lam)
        near = np.abs(lam) <= 0.05 * abs(row.top_eigenvalue)
        shares.append(float(integrate(np.where(near, rho, 0.0), lam) / total) if total > 0 else np.nan)
    if not shares:
        return FD.not_run("no analysed epoch")
    mean, low, high = FD.bootstrap_mean(shares)
    return FD.Measured(mean, FD.verdict(min(shares) >= 0.9),
                       f"{len(shares)} runs: " + ", ".join(f"{s:.3f}" for s in shares), low, high)


def _negative_fraction_falls(tables: Mapping[str, Any], config: Config):
    from .. import findings as FD

    summary = tables["hessian_summary"].sort_values("epoch")
    changes = {}
    for run, rows in summary.groupby("run"):
        if rows["epoch"].nunique() >= 2:
            changes[run] = float(rows["negative_fraction"].iloc[-1] - rows["negative_fraction"].iloc[0])
    if not changes:
        return FD.not_run("needs two or more analysed epochs of a run")
    mean, low, high = FD.bootstrap_mean(list(changes.values()))
    return FD.Measured(mean, FD.verdict(all(c < 0 for c in changes.values())),
                       ", ".join(f"{r} {c:+.2g}" for r, c in changes.items()), low, high)


def _findings():
    from ..findings import Finding

    return (
        Finding("bulk_near_zero", "The Hessian spectrum is a bulk near zero plus a few outliers",
                "review §Hessian (Sagun et al.)",
                "share of the eigenvalue density within ±5 % of the top eigenvalue around zero, at the last "
                "analysed epoch (mean over runs)",
                "reproduced if at least 0.9 for every run", ("hessian_summary", "hessian_density"),
                _bulk_near_zero, "hessian"),
        Finding("negative_fraction_falls", "The fraction of negative eigenvalues falls during training",
                "review §Hessian (Sagun et al., Dauphin et al.)",
                "change of the negative-eigenvalue fraction from the first to the last analysed epoch "
                "(mean over runs)",
                "reproduced if it falls for every run", ("hessian_summary",), _negative_fraction_falls,
                "hessian"),
    )


FINDINGS = _findings()
