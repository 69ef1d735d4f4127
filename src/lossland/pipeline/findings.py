"""The papers' claims, measured on our tables, each with a verdict.

A family declares its papers' claims as data: ``FINDINGS``, a tuple of :class:`Finding`
(the claim in one line, the paper and figure, the quantity that tests it, the rule for a
verdict, the paper's value where it gives one, the tables it reads and the function that
measures it). :func:`evaluate` measures every finding of every family on one run's
tables into one row each of ``results/tables/findings.parquet``:

``family, finding, claim, paper, scale, quantity, measured, low, high, paper_value, rule,
verdict, detail, tables``

``measured`` is the number the rule tests, ``low``/``high`` a 95 % bootstrap interval
where one exists (NaN otherwise), ``verdict`` one of :data:`VERDICTS`. A finding whose
tables this config does not produce, or whose test needs more than this scale has (two
seeds, two inits, ...), is ``not run at this scale`` with the reason in ``detail``.
:func:`findings_html` and :func:`overview_rst` write the report's findings page and the
overview its front page includes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .family import Config

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_RUN = "not run at this scale"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_RUN)
COLUMNS = ["family", "finding", "claim", "paper", "scale", "quantity", "measured", "low", "high",
           "paper_value", "rule", "verdict", "detail", "tables"]


@dataclass(frozen=True)
class Measured:
    """What a finding's measure returns: the tested number, its interval, the verdict, a note."""

    value: float
    verdict: str
    detail: str = ""
    low: float = math.nan
    high: float = math.nan

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r}; allowed: {', '.join(VERDICTS)}")


@dataclass(frozen=True)
class Finding:
    """One claim of a paper and how our tables test it (see the module docstring)."""

    name: str
    claim: str
    paper: str
    quantity: str
    rule: str
    tables: tuple[str, ...]
    measure: Callable[[Mapping[str, Any], Config], Measured] = field(compare=False)
    section: str
    paper_value: str = ""


def not_run(reason: str) -> Measured:
    return Measured(math.nan, NOT_RUN, reason)


def verdict(holds: bool) -> str:
    return REPRODUCED if holds else NOT_REPRODUCED


def bootstrap_mean(values: Sequence[float], *, samples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its 95 % percentile-bootstrap interval
    (NaN bounds for fewer than two values)."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    if x.size < 2:
        return float(x.mean()), math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(x.mean()), float(low), float(high)


def within_factor(value: float, reference: float, factor: float = 2.0) -> bool:
    """Whether ``value`` lies within ``[reference / factor, reference * factor]``."""
    return bool(np.isfinite(value)) and reference / factor <= value <= reference * factor


def first_crossing(x: Sequence[float], y: Sequence[float], level: float) -> float:
    """The smallest ``x`` at which ``y`` (sampled at increasing ``x``) reaches ``level``, by linear
    interpolation between the samples around it; NaN when it never does."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    for i in range(len(x)):
        if y[i] >= level:
            if i == 0:
                return float(x[0])
            if not np.isfinite(y[i]):
                return float(x[i - 1])
            return float(x[i - 1] + (level - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    return math.nan


def barrier(loss: Sequence[float]) -> float:
    """The loss barrier along a line sampled from one end to the other: the highest loss
    between the ends minus the higher of the two ends' losses (≤ 0: no barrier)."""
    loss = np.asarray(loss, float)
    if loss.size < 3:
        return math.nan
    return float(loss[1:-1].max() - max(loss[0], loss[-1]))


def last_epoch_rows(metrics, by: str = "run"):
    """The last epoch's row of every run of a metrics table."""
    return metrics.sort_values("epoch").groupby(by, sort=False).tail(1)


# --------------------------------------------------------------------------- evaluation


def registered() -> list[tuple[str, Finding]]:
    """``(family, finding)`` of every family of the registry, in order."""
    from . import families

    return [(f.NAME, finding) for f in families.FAMILIES for finding in getattr(f, "FINDINGS", ())]


def evaluate(config: Config, tables: Mapping[str, Any]):
    """One row per registered finding (see the module docstring); ``tables`` maps a table name to
    its DataFrame (only the produced tables)."""
    import pandas as pd

    from .captions import scale

    rows = []
    for family, finding in registered():
        missing = [t for t in finding.tables if t not in tables]
        if missing:
            result = not_run(f"this config does not produce {', '.join(missing)}")
        else:
            try:
                result = finding.measure(tables, config)
            except (KeyError, ValueError, IndexError) as exc:
                result = not_run(f"could not be measured on these tables: {exc}")
        rows.append({
            "family": family, "finding": finding.name, "claim": finding.claim, "paper": finding.paper,
            "scale": scale(config, finding.section) if config.get(finding.section) else "not configured",
            "quantity": finding.quantity, "measured": float(result.value), "low": float(result.low),
            "high": float(result.high), "paper_value": finding.paper_value, "rule": finding.rule,
            "verdict": result.verdict, "detail": result.detail, "tables": ", ".join(finding.tables)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _number(value: float) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:.3g}"


def findings_html(frame) -> str:
    """The report's findings page: a self-contained HTML table, one row per finding."""
    colours = {REPRODUCED: "#1a7f37", NOT_REPRODUCED: "#b42318", NOT_RUN: "#6e7781"}
    counts = frame["verdict"].value_counts()
    head = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>Findings</title><style>",
           "body{font-family:sans-serif;font-size:14px;margin:1em}table{border-collapse:collapse}",
           "td,th{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}",
           "th{background:#f6f8fa}.v{font-weight:bold;white-space:nowrap}</style></head><body>",
           f"<h2>Findings: each claim of the papers, measured</h2><p>{len(frame)} claims: {head}.</p>",
           "<table><tr><th>claim</th><th>paper</th><th>measured</th><th>95 % interval</th>"
           "<th>paper's value</th><th>verdict</th><th>rule</th><th>scale</th><th>tables</th></tr>"]
    for row in frame.itertuples():
        interval = (f"[{_number(row.low)}, {_number(row.high)}]" if np.isfinite(row.low) else "–")
        detail = f"<br><small>{html.escape(row.detail)}</small>" if row.detail else ""
        out.append(
            f"<tr><td>{html.escape(row.claim)}</td><td>{html.escape(row.paper)}</td>"
            f"<td>{_number(row.measured)}<br><small>{html.escape(row.quantity)}</small></td><td>{interval}</td>"
            f"<td>{html.escape(row.paper_value) or '–'}</td>"
            f"<td class='v' style='color:{colours[row.verdict]}'>{row.verdict}{detail}</td>"
            f"<td>{html.escape(row.rule)}</td><td><small>{html.escape(row.scale)}</small></td>"
            f"<td><small>{html.escape(row.tables)}</small></td></tr>")
    out.append("</table></body></html>")
    return "\n".join(out) + "\n"


#: the documents and their parts, and the families that regenerate them (none: not yet)
COVERAGE = (
    ("im2016: optimizer study, RK2, initialisations, switching (Fig 4, 7, 9, 11-15)", "im2016"),
    ("im2016: interpolations and planes (Fig 2, 3, 5, 6, 7 right, 10, Table 1)", "landscape"),
    ("im2016: Table 2 / Fig 8 with and without BatchNorm, VGG panels, the LSTM", None),
    ("the review: Hessian spectra, negative eigenvalues, sharpness", "hessian"),
    ("the review: mode connectivity, a walk with SGD", "connectivity"),
    ("the review: batch size and sharpness, skip connections, depth and width", "sharpness"),
    ("dinh2017: reparametrisations move sharpness, not the function", "reparam"),
    ("zhang2018: energy-entropy competition (SGD, Langevin, GD; deep linear students)", "entropy"),
)


def overview_rst(config: Config, frame) -> str:
    """The report's overview (included by ``workflow/report/workflow.rst``): what this run
    covered and at which scale, the training settings, and the findings' verdicts."""
    from . import families
    from .captions import scale

    present = {f.NAME for f in families.FAMILIES if any(config.get(s) for s in f.SECTIONS)}
    lines = ["What this run covered", "---------------------", ""]
    for part, family in COVERAGE:
        state = ("**ran**" if family in present else "configured off" if family else "not implemented yet")
        lines.append(f"* {part}: {state}")
    lines += ["", "Scale of each configured section:", ""]
    for family in families.FAMILIES:
        for section in family.SECTIONS:
            if config.get(section):
                lines.append(f"* ``{section}``: {scale(config, section)}")
    training = config.get("training") or {}
    lines += ["", f"Device: {config.get('device', 'cpu')}. Training: "
              + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in training.items()) + ".", ""]
    counts = frame["verdict"].value_counts()
    lines += ["Findings: " + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)
              + " (the *Findings* category has the table).", ""]
    for row in frame.itertuples():
        value = "" if row.verdict == NOT_RUN else f" (measured {_number(row.measured)})"
        lines.append(f"* {row.claim} — *{row.verdict}*{value}")
    return "\n".join(lines) + "\n"


def write(config: Config, table_paths: Mapping[str, str], table_out: str, page_out: str, overview_out: str) -> None:
    """The findings rule: measure every finding on ``table_paths`` (``{name: parquet path}``) and
    write the table, the findings page and the overview."""
    from .. import io

    tables = {name: io.read_parquet(path) for name, path in table_paths.items()}
    frame = evaluate(config, tables)
    params = {"findings": [f"{family}.{finding.name}" for family, finding in registered()],
              "tables": {name: str(path) for name, path in sorted(table_paths.items())}}
    io.write_parquet(frame, table_out, io.provenance(params))
    io.write_text(findings_html(frame), page_out)
    io.write_text(overview_rst(config, frame), overview_out)
