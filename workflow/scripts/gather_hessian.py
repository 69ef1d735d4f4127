"""Rule gather_hessian: the per-point Hessian tables in one table each."""

import pandas as pd

from lossland import io
from lossland.runtime import setup_logging
from lossland.spectra import TABLES, expand_init_rows

log = setup_logging(snakemake.log[0])
for name in TABLES:
    paths = [p for p in snakemake.input if p.endswith(f"/{name}.parquet")]
    table = pd.concat([io.read_parquet(p) for p in paths], ignore_index=True)
    table = expand_init_rows(table, snakemake.params.runs)
    io.write_parquet(table, snakemake.output[name], io.provenance({"parts": paths}))
    log.info("%s: %d rows from %d files", name, len(table), len(paths))
