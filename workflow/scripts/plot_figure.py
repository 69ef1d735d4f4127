"""Rules plot_<figure>: one figure of a family's FIGURES table, from its gathered tables (no torch)."""

from lossland import io
from lossland.pipeline import jobs
from lossland.plots import figure_function, save_figure

log, _ = jobs.start(snakemake.log[0], compute=False)
draw = figure_function(snakemake.params.function)
fig = draw(*[io.read_parquet(p) for p in snakemake.input], **snakemake.params.kwargs)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
log.info("%s: %s from %d tables", snakemake.output.png, snakemake.params.function, len(snakemake.input))
