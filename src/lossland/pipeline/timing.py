"""Where a workflow run's time went, per family, from Snakemake's benchmark files.

Every rule writes ``results/benchmarks/<rule>/<name>.tsv`` (the figure rules:
``plot/<figure>``), whose ``s`` column is the job's wall-clock seconds. A file is
credited to the family whose rules file (``workflow/rules/<family>.smk``) defines its
rule; a training run (``train_run``) to the first family in registry order whose
sections ask for it (a run the landscape or Hessian stages analyse is im2016's); a
figure to the family that registers it; data preparation and initial weights to
``data``; the findings to ``report``. Used by ``benchmarks/family_times.py`` (and ``benchmarks/gpu_checks.sh``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import families as F

SHARED = "data"
REPORT = "report"
_RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)


def default_rules_dir() -> Path:
    """The workflow's rules files, when this package is used from a checkout of the repository."""
    return Path(__file__).resolve().parents[3] / "workflow" / "rules"


def rule_families(rules_dir: str | Path | None = None) -> dict[str, str]:
    """``{rule: family}`` for the rules of every family's ``<family>.smk``."""
    folder = Path(rules_dir or default_rules_dir())
    out: dict[str, str] = {}
    for family in F.FAMILIES:
        path = folder / f"{family.NAME}.smk"
        if path.exists():
            out.update({rule: family.NAME for rule in _RULE.findall(path.read_text())})
    return out


def run_owners(config: Mapping[str, Any]) -> dict[str, str]:
    """``{run: family}``: the first family (registry order) whose sections ask for the run."""
    owners: dict[str, str] = {}
    for family in F.FAMILIES:
        for _, specs in family.runs(config):
            for spec in specs:
                owners.setdefault(spec["run"], family.NAME)
    return owners


def read_seconds(path: str | Path) -> float:
    """The ``s`` column of one Snakemake benchmark file (the sum over its repeats)."""
    with open(path, newline="") as f:
        return sum(float(row["s"]) for row in csv.DictReader(f, delimiter="\t"))


def family_of(rule: str, name: str, *, rules: Mapping[str, str], owners: Mapping[str, str]) -> str:
    """The family one benchmark file ``<rule>/<name>.tsv`` is credited to (see the module docstring)."""
    if rule == "train_run":
        return owners.get(name, "unknown")
    if rule == "plot":
        found = F.figures().get(name)
        return found[0].NAME if found else "unknown"
    if rule in ("prepare_dataset", "init_weights"):
        return SHARED
    if rule == "findings":
        return REPORT
    return rules.get(rule, "unknown")


def family_times(results: str | Path, config: Mapping[str, Any], rules_dir: str | Path | None = None):
    """One row per family (``family, jobs, seconds, share``) over ``results/benchmarks``, in
    registry order with ``data`` first and ``report`` last; ``unknown`` collects files no rule
    explains."""
    import pandas as pd

    rules, owners = rule_families(rules_dir), run_owners(config)
    folder = Path(results) / "benchmarks"
    totals: dict[str, list[float]] = {}
    for path in sorted(folder.rglob("*.tsv")):
        rel = path.relative_to(folder).with_suffix("")
        rule, name = rel.parts[0], "/".join(rel.parts[1:])
        family = family_of(rule, name, rules=rules, owners=owners)
        entry = totals.setdefault(family, [0, 0.0])
        entry[0] += 1
        entry[1] += read_seconds(path)
    order = [SHARED, *(f.NAME for f in F.FAMILIES), REPORT, "unknown"]
    frame = pd.DataFrame([{"family": f, "jobs": int(totals[f][0]), "seconds": totals[f][1]}
                          for f in order if f in totals], columns=["family", "jobs", "seconds"])
    total = frame["seconds"].sum()
    frame["share"] = frame["seconds"] / total if total else 0.0
    return frame
