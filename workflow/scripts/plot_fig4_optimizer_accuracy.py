"""Rule plot_fig4_optimizer_accuracy: lossland.plots.optimizer_accuracy of the chosen runs' metrics."""

from lossland import io, plots
from lossland.runtime import setup_logging

setup_logging(snakemake.log[0])
fig = plots.optimizer_accuracy(io.read_parquet(snakemake.input[0]))
plots.save_figure(fig, snakemake.output[0])
