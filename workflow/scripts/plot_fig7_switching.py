"""Rule plot_fig7_switching: lossland.plots.switching of the switch study's metrics."""

from lossland import io, plots
from lossland.runtime import setup_logging

setup_logging(snakemake.log[0])
fig = plots.switching(io.read_parquet(snakemake.input[0]), snakemake.params.switches)
plots.save_figure(fig, snakemake.output[0])
