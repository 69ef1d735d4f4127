"""Rules plot_<figure> of the landscape stage: lossland.plots.LANDSCAPE_FIGURES of the gathered tables."""

from lossland import io, plots
from lossland.runtime import setup_logging

setup_logging(snakemake.log[0])
tables = [io.read_parquet(p) for p in snakemake.input]
plots.save_figure(plots.LANDSCAPE_FIGURES[snakemake.params.figure](*tables), snakemake.output[0])
