"""Rule entropy_dynamics: one dynamics on an ensemble, descent to the tolerance, the entropy of every solution."""

import time

from lossland import io
from lossland.data import load_prepared
from lossland.pipeline import jobs
from lossland.pipeline.families import entropy as lentropy

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
p = snakemake.params.p
prepared = load_prepared(snakemake.input.data, device=device)
train, test = prepared["train"], prepared["test"]
began = time.perf_counter()
tables = lentropy.run_dynamics((train.x, train.y), (test.x, test.y), p, device=device, progress=True)
for name, table in tables.items():
    io.write_parquet(table, snakemake.output[name], io.provenance(p, device=str(device)))
s = tables["solutions"]
log.info("%s: %d solutions (%d converged to %g), mean entropy %.4g, mean test error %.3f (%.1f s)", p["dynamics"],
         len(s), int(s["converged"].sum()), p["tol"], s["entropy"].mean(), s["test_error"].mean(),
         time.perf_counter() - began)
