"""Rule batch_size_line: the 1-D line from the small-batch solution to a larger batch's, on every split."""

import time

from lossland import io
from lossland.data import load_prepared
from lossland.pipeline import jobs
from lossland.pipeline.families import landscape as lland
from lossland.pipeline.families import sharpness as lsharp

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
p = snakemake.params.p
start = time.perf_counter()
model, (small, large) = jobs.load_weights([(snakemake.input.start, p["epochs"][0]),
                                           (snakemake.input.end, p["epochs"][1])], device)
data = lland.split_data(load_prepared(snakemake.input.data, device=device), p)
table = lsharp.evaluate_line(model, small, large, data, p)
io.write_parquet(table, snakemake.output[0], io.provenance({"params": p}, device=str(device)))
ends = table[table["split"] == p["splits"][0]].set_index("alpha")["loss"]
log.info("%s -> %s: %s loss %.4g at alpha 0, %.4g at 1, max %.4g (%d rows, %.1f s)", p["ids"]["start"],
         p["ids"]["end"], p["splits"][0], ends.iloc[(abs(ends.index - 0.0)).argmin()],
         ends.iloc[(abs(ends.index - 1.0)).argmin()], ends.max(), len(table), time.perf_counter() - start)
