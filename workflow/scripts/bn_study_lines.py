"""Rule bn_study_lines: init->final and final->final lines of one model and init seed, on every split."""

import sys
import time

from tqdm import tqdm

from lossland import io
from lossland.data import load_prepared
from lossland.pipeline import jobs
from lossland.pipeline.families import batchnorm as lbn
from lossland.pipeline.families import landscape as lland

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
p = snakemake.params.p
start = time.perf_counter()
runs = p["runs"]
model, states = jobs.load_weights([(snakemake.input.init, 0)]
                                  + [(snakemake.input[f"w{i}"], r["epoch"]) for i, r in enumerate(runs)], device)
data = lland.split_data(load_prepared(snakemake.input.data, device=device), p)
n_lines = len(lbn.line_ends(len(runs)))
with tqdm(total=n_lines, desc=f"{p['ids']['model']} init {p['ids']['seed']}", unit="line", file=sys.stderr) as bar:
    table = lbn.evaluate_lines(model, states[0], states[1:], data, p, progress=bar)
io.write_parquet(table, snakemake.output[0], io.provenance({"params": p}, device=str(device)))
log.info("%s %s init %d: %d lines, %d rows in %.1f s", p["ids"]["architecture"], p["ids"]["model"],
         p["ids"]["seed"], n_lines, len(table), time.perf_counter() - start)
