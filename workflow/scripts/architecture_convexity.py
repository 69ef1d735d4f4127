"""Rule architecture_convexity: Li et al.'s map |lambda_min / lambda_max| on a coarse grid of a solution's plane."""

import sys
import time

from tqdm import tqdm

from lossland import io
from lossland.data import load_prepared, subset_indices
from lossland.pipeline import jobs
from lossland.pipeline.families import sharpness as lsharp

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
p = snakemake.params.p
start = time.perf_counter()
model, (origin,) = jobs.load_weights([(snakemake.input.weights, p["epoch"])], device)
split = load_prepared(snakemake.input.data, device=device)[p["split"]]
idx = subset_indices(len(split), p["convexity"]["samples"]).to(split.y.device)  # splits are sorted by class
xs, ys = lsharp.convexity_axes(p["plane"], p["convexity"]["num"])
with tqdm(total=len(xs) * len(ys), desc=f"convexity {p['ids']['run']}", unit="point", file=sys.stderr) as bar:
    table = lsharp.evaluate_convexity(model, origin, (split.x[idx], split.y[idx]), p, progress=bar)
io.write_parquet(table, snakemake.output[0], io.provenance({"params": p, "samples": len(idx)}, device=str(device)))
log.info("%s: |lambda_min/lambda_max| %.3g..%.3g over %d points (%.1f s)", p["ids"]["run"],
         table["convexity_ratio"].min(), table["convexity_ratio"].max(), len(table), time.perf_counter() - start)
