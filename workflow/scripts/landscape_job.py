"""Rules landscape_line / landscape_shard: one line, or one shard of a plane, on every split."""

import sys
import time

from tqdm import tqdm

from lossland import io
from lossland.data import load_prepared
from lossland.pipeline import jobs
from lossland.pipeline.families import landscape as lland

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
p = snakemake.params.p
kind, job, settings = p["kind"], p["job"], p["settings"]
shard, shards = int(snakemake.params.shard), int(snakemake.params.shards)
model, states = lland.load_states(snakemake.input, lland.weight_refs(job), device)
data = lland.split_data(load_prepared(snakemake.input.data, device=device), settings)
directions = lland.load_directions(snakemake.input.directions, snakemake.input.trajectory, device) \
    if kind == "pca" else None
start = time.perf_counter()
with tqdm(total=len(data), desc=f"{kind} {job['name']} {shard + 1}/{shards}", file=sys.stderr,
          unit="split") as bar:
    table = lland.evaluate_job(kind, model, states, data, job, settings, shard=shard, shards=shards,
                               directions=directions, progress=bar)
io.write_parquet(table, snakemake.output[0],
                 io.provenance({"kind": kind, "job": job, "settings": settings, "shard": shard, "shards": shards},
                               device=str(device)))
log.info("%s %s shard %d/%d: %d rows in %.1f s", kind, job["name"], shard + 1, shards, len(table),
         time.perf_counter() - start)
