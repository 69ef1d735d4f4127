"""Rule plot_fig9_rk2_training: lossland.plots.rk2_training of the chosen runs' metrics."""

from lossland import io, plots
from lossland.runtime import setup_logging

setup_logging(snakemake.log[0])
fig = plots.rk2_training(io.read_parquet(snakemake.input[0]))
plots.save_figure(fig, snakemake.output[0])
