"""Rule plot_fig11_exotic_inits: lossland.plots.exotic_inits of the chosen runs' metrics."""

from lossland import io, plots
from lossland.runtime import setup_logging

setup_logging(snakemake.log[0])
fig = plots.exotic_inits(io.read_parquet(snakemake.input[0]))
plots.save_figure(fig, snakemake.output[0])
