"""Rules plot_<figure>: one figure of a family's FIGURES table, from its gathered tables (no torch),
and its caption with the numbers it shows."""

from lossland import io
from lossland.pipeline import jobs
from lossland.pipeline.captions import render
from lossland.plots import caption_numbers, figure_function, save_figure

log, _ = jobs.start(snakemake.log[0], compute=False)
tables = [io.read_parquet(p) for p in snakemake.input]
fig = figure_function(snakemake.params.function)(*tables, **snakemake.params.kwargs)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
numbers = caption_numbers(snakemake.params.function)(*tables, **snakemake.params.kwargs)
io.write_text(render(snakemake.params.template, numbers, snakemake.config, snakemake.params.section),
              snakemake.output.caption)
log.info("%s: %s from %d tables; caption numbers %s", snakemake.output.png, snakemake.params.function,
         len(snakemake.input), numbers)
