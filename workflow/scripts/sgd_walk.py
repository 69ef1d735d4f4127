"""Rule sgd_walk: steps of SGD (or gradient descent) from a run's final weights, every segment measured."""

import time

from lossland import io
from lossland.data import load_prepared, subset_indices
from lossland.pipeline import jobs
from lossland.pipeline.families import connectivity as lconn

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
p = snakemake.params.p
model, _ = jobs.load_weights([(snakemake.input.weights, p["epoch"])], device)
train = load_prepared(snakemake.input.data, device=device)["train"]
idx = subset_indices(len(train), p["samples"]).to(train.y.device)  # splits are sorted by class
began = time.perf_counter()
tables = lconn.run_walk(model, (train.x[idx], train.y[idx]), p, progress=True)
for name, table in tables.items():
    io.write_parquet(table, snakemake.output[name], io.provenance(p, samples=len(idx), device=str(device)))
s = lconn.walk_summary(tables["steps"]).iloc[0]
log.info("%s: %d steps at lr %.4g; late mean gradient angle %.1f deg, interior minima %.0f%% (full), "
         "%.0f%% (batch) (%.1f s)", p["walk"], p["steps"], p["lr"], s["mean_angle"], 100 * s["interior_full"],
         100 * s["interior_batch"], time.perf_counter() - began)
