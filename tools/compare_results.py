#!/usr/bin/env python3
"""Compare two results folders table by table, by value.

    python tools/compare_results.py OLD/results NEW/results [--rtol 0] [--atol 0]
                                    [--ignore wall_time,seconds] [--json report.json]

Every Parquet file under either folder is matched by its relative path. Two
tables are the same when they have the same columns and rows and every value
agrees: strings and integers exactly, floats within ``atol + rtol·|old|`` (NaN
equals NaN; the defaults ask for identical numbers). Columns named in
``--ignore`` (default: the timing columns ``wall_time`` and ``seconds``) are left
out. Row order matters, as it does for the workflow's tables. Figures (``.png``,
``.pdf``) are compared by name only: a figure's bytes change with the plotting
library, its values are in the tables. Provenance (schema metadata: git commit,
package versions, config hashes) is not compared.

Prints one line per differing file and a summary; exits 0 when every table
matches and both folders hold the same tables and figures, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

TIMING_COLUMNS = ("wall_time", "seconds")
FIGURE_SUFFIXES = (".png", ".pdf")


def compare_tables(old: pd.DataFrame, new: pd.DataFrame, *, rtol: float = 0.0, atol: float = 0.0,
                   ignore: tuple[str, ...] = TIMING_COLUMNS) -> dict:
    """``{"same": bool, "problems": [...], "columns": {column: max abs / rel difference}}``."""
    problems: list[str] = []
    old = old.drop(columns=[c for c in ignore if c in old])
    new = new.drop(columns=[c for c in ignore if c in new])
    if list(old.columns) != list(new.columns):
        missing, extra = sorted(set(old) - set(new)), sorted(set(new) - set(old))
        if missing or extra:
            problems.append(f"columns differ: only old {missing}, only new {extra}")
        else:
            problems.append("columns in another order")
    if len(old) != len(new):
        problems.append(f"{len(old)} rows, now {len(new)}")
    diffs: dict[str, dict[str, float]] = {}
    if len(old) == len(new):
        for col in [c for c in old.columns if c in new.columns]:
            a, b = old[col].reset_index(drop=True), new[col].reset_index(drop=True)
            numeric = pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b)
            if numeric and pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
                x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
                both_nan = np.isnan(x) & np.isnan(y)
                with np.errstate(invalid="ignore"):
                    delta = np.where(both_nan, 0.0, np.abs(x - y))
                delta = np.where(np.isnan(delta), np.inf, delta)  # NaN on one side only
                scale = np.abs(x)
                bad = delta > atol + rtol * np.nan_to_num(scale, nan=0.0)
                if delta.size and delta.max() > 0:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        rel = np.where(scale > 0, delta / scale, np.where(delta > 0, np.inf, 0.0))
                    diffs[col] = {"max_abs": float(delta.max()), "max_rel": float(np.nanmax(rel)),
                                  "rows": int((delta > 0).sum())}
                if bad.any():
                    problems.append(f"{col}: {int(bad.sum())} values differ (max abs {delta.max():.3g}, "
                                    f"max rel {diffs[col]['max_rel']:.3g})")
            else:
                unequal = ~((a == b) | (a.isna() & b.isna()))
                if unequal.any():
                    first = int(np.flatnonzero(unequal.to_numpy())[0])
                    problems.append(f"{col}: {int(unequal.sum())} values differ (row {first}: "
                                    f"{a.iloc[first]!r} -> {b.iloc[first]!r})")
    return {"same": not problems, "problems": problems, "columns": diffs}


def _files(root: Path, suffixes: tuple[str, ...]) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix in suffixes
            and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def compare_folders(old: Path, new: Path, **options) -> dict:
    """Compare every table and the set of figures of two results folders."""
    old_tables, new_tables = _files(old, (".parquet",)), _files(new, (".parquet",))
    report = {"tables": {}, "only_old": sorted(old_tables - new_tables), "only_new": sorted(new_tables - old_tables)}
    for rel in sorted(old_tables & new_tables):
        report["tables"][rel] = compare_tables(pd.read_parquet(old / rel), pd.read_parquet(new / rel), **options)
    old_figs, new_figs = _files(old, FIGURE_SUFFIXES), _files(new, FIGURE_SUFFIXES)
    report["figures_only_old"] = sorted(old_figs - new_figs)
    report["figures_only_new"] = sorted(new_figs - old_figs)
    report["figures_common"] = len(old_figs & new_figs)
    report["same"] = (all(t["same"] for t in report["tables"].values()) and not report["only_old"]
                      and not report["only_new"] and not report["figures_only_old"]
                      and not report["figures_only_new"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="the reference results folder")
    parser.add_argument("new", type=Path, help="the results folder to check")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance of floats (default 0)")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance of floats (default 0)")
    parser.add_argument("--ignore", default=",".join(TIMING_COLUMNS),
                        help="comma-separated columns to leave out (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    args = parser.parse_args(argv)
    for folder in (args.old, args.new):
        if not folder.is_dir():
            parser.error(f"{folder}: not a folder")
    ignore = tuple(c for c in args.ignore.split(",") if c)
    report = compare_folders(args.old, args.new, rtol=args.rtol, atol=args.atol, ignore=ignore)
    tables = report["tables"]
    for rel, result in tables.items():
        if not result["same"]:
            print(f"DIFFERENT {rel}: " + "; ".join(result["problems"]))
        elif result["columns"]:
            within = ", ".join(f"{c} (max rel {d['max_rel']:.2g})" for c, d in result["columns"].items())
            print(f"within tolerance {rel}: {within}")
    for key, label in (("only_old", "only in old"), ("only_new", "only in new"),
                       ("figures_only_old", "figure only in old"), ("figures_only_new", "figure only in new")):
        for rel in report[key]:
            print(f"{label}: {rel}")
    identical = sum(1 for r in tables.values() if r["same"] and not r["columns"])
    print(f"{len(tables)} tables compared: {identical} identical, "
          f"{sum(1 for r in tables.values() if r['same'] and r['columns'])} within tolerance, "
          f"{sum(1 for r in tables.values() if not r['same'])} different; "
          f"{report['figures_common']} figures in both"
          f" (ignored columns: {', '.join(ignore) or 'none'})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["same"] else 1


if __name__ == "__main__":
    sys.exit(main())
