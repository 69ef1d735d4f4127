"""Concatenate Parquet tables (same columns) into one, keeping provenance of each part."""

from lossland import io
from lossland.runtime import setup_logging
from lossland.io import concat_parquet

log = setup_logging(snakemake.log[0])
table, parts = concat_parquet(list(snakemake.input))
io.write_parquet(table, snakemake.output[0], io.provenance({"parts": parts}))
log.info("%d rows from %d tables", len(table), len(snakemake.input))
