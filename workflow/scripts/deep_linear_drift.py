"""Rule deep_linear_drift: the drift of W1 W1^T - W2^T W2 under full-batch GD and SGD."""

import time

from lossland import io
from lossland.pipeline import jobs
from lossland.pipeline.families import entropy as lentropy

log, _ = jobs.start(snakemake.log[0], threads=snakemake.threads)  # float64 and tiny: always on the CPU
p = snakemake.params.p
began = time.perf_counter()
table = lentropy.run_drift(p)
io.write_parquet(table, snakemake.output.drift, io.provenance(p))
last = table.sort_values("step").groupby(["method", "lr"]).tail(1)
log.info("relative drift at the end: %s (%.1f s)", ", ".join(f"{r.method} lr {r.lr:g}: {r.relative_drift:.3g}"
                                                           for r in last.itertuples()), time.perf_counter() - began)
