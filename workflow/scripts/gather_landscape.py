"""Rules gather_landscape_surface / gather_landscape_table: shards -> surface, surfaces -> table."""

import pandas as pd

from lossland import io
from lossland import landscape_plan as lplan
from lossland.runtime import setup_logging

log = setup_logging(snakemake.log[0])
frames = [io.read_parquet(p) for p in snakemake.input]
if snakemake.rule == "gather_landscape_surface":
    table = lplan.gather_shards(frames, snakemake.params.settings, snakemake.wildcards.kind)
else:
    table = pd.concat(frames, ignore_index=True)
io.write_parquet(table, snakemake.output[0], io.provenance({"parts": list(snakemake.input)}))
log.info("%s: %d rows from %d files", snakemake.output[0], len(table), len(frames))
