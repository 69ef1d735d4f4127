"""Each family's share of a finished workflow run, from Snakemake's benchmark files.

    python benchmarks/family_times.py --configfile config/gpu-smoke.yaml [--directory DIR] [--wall SECONDS]

Sums the ``s`` column (a job's wall-clock seconds) of ``DIR/results/benchmarks/**.tsv``
per family (:func:`lossland.pipeline.timing.family_times`): training runs to the family
that asks for them, figures to the family that draws them, data preparation and initial
weights to ``data``. With ``--wall`` (the run's own wall clock) it also prints how many
jobs ran side by side on average (job-seconds / wall).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from lossland.pipeline import config as C
from lossland.pipeline.timing import family_times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", required=True, help="the config the run used")
    ap.add_argument("--directory", default=".", help="the run's working directory (holds results/)")
    ap.add_argument("--wall", type=float, help="the run's wall-clock seconds")
    args = ap.parse_args()
    config = C.check_config(yaml.safe_load(Path(args.configfile).read_text()))
    frame = family_times(Path(args.directory) / "results", config)
    if frame.empty:
        raise SystemExit(f"no benchmark files under {Path(args.directory) / 'results' / 'benchmarks'}")
    print(f"{'family':<12}{'jobs':>6}{'job-seconds':>13}{'share':>8}")
    for row in frame.itertuples():
        print(f"{row.family:<12}{row.jobs:>6}{row.seconds:>13.1f}{row.share:>8.1%}")
    total = frame["seconds"].sum()
    print(f"{'total':<12}{frame['jobs'].sum():>6}{total:>13.1f}")
    if args.wall:
        print(f"wall clock {args.wall:.0f} s ({args.wall / 60:.1f} min); {total / args.wall:.2f} jobs at a time "
              f"on average")


if __name__ == "__main__":
    main()
