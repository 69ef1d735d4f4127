"""Rule plot_learning_curves: per-epoch loss and accuracy of every run."""

from lossland import io, plots
from lossland.runtime import setup_logging

setup_logging(snakemake.log[0])
fig = plots.learning_curves(io.read_parquet(snakemake.input[0]))
plots.save_figure(fig, snakemake.output[0])
