"""Rule curve_pair: a curve trained between two solutions, against the line, and the plane through it."""

import time

from lossland import io
from lossland.data import load_prepared
from lossland.pipeline import jobs
from lossland.pipeline.families import connectivity as lconn
from lossland.pipeline.families.landscape import split_data

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
p = snakemake.params.p
settings = p["settings"]
model, (start, end) = jobs.load_weights([(snakemake.input.start, p["epochs_end"]),
                                         (snakemake.input.end, p["epochs_end"])], device)
prepared = load_prepared(snakemake.input.data, device=device)
train = prepared["train"]
splits = split_data(prepared, settings)
began = time.perf_counter()
tables = lconn.run_curve(model, start, end, (train.x, train.y), splits, p, device=device, progress=True)
for name, table in tables.items():
    io.write_parquet(table, snakemake.output[name], io.provenance(p, device=str(device)))
b = lconn.pair_barriers(tables["profiles"], split=settings["splits"][0])
log.info("%s (%s, %d epochs): barrier on %s: line %.4g, curve %.4g (%.1f s)", p["pair"], settings["kind"],
         settings["epochs"], settings["splits"][0], b["line_barrier"].iloc[0], b["curve_barrier"].iloc[0],
         time.perf_counter() - began)
