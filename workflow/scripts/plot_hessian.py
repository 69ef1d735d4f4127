"""Rules plot_hessian_*: lossland.plots.hessian_* of the gathered Hessian tables."""

from lossland import io, plots
from lossland.runtime import setup_logging

setup_logging(snakemake.log[0])
draw = {
    "plot_hessian_density": plots.hessian_density,
    "plot_hessian_sharpness": plots.hessian_sharpness,
    "plot_hessian_negative_fraction": plots.hessian_negative_fraction,
}[snakemake.rule]
plots.save_figure(draw(io.read_parquet(snakemake.input[0])), snakemake.output[0])
