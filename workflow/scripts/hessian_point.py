"""Rules hessian_init / hessian_checkpoint: the Hessian report of one set of weights."""

from lossland import io, memory
from lossland.curvature import SpectrumSettings, hessian_report
from lossland.data import load_prepared, subset_indices
from lossland.pipeline import jobs
from lossland.pipeline.tables import with_ids

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
analysis, ids = snakemake.params.analysis, dict(snakemake.params.ids)
model, (_,) = jobs.load_weights([(snakemake.input.weights, snakemake.params.epoch)], device)
split = load_prepared(snakemake.input.data, device=device)[analysis["split"]]
idx = subset_indices(len(split), analysis["samples"]).to(split.y.device)  # splits are sorted by class
x, y = split.x[idx], split.y[idx]
# one batch (its graph reused by every product) unless that would not fit the job's mem_mb
chunks = memory.chunk_plan(model, x, snakemake.resources.get("mem_mb"), device, kind="hvp")
if chunks["chunks"] > 1:
    log.info("%d images in %d chunks of %d: one batch would not fit the %s MB left of mem_mb "
             "(about %.3g MB per image)", len(idx), chunks["chunks"], chunks["batch_size"], chunks["budget_mb"],
             chunks["per_example_mb"])
tables = hessian_report(model, (x, y), SpectrumSettings.from_config(analysis["settings"]),
                        batch_size=chunks["batch_size"])
for name, table in tables.items():
    with_ids(table, {**ids, "split": analysis["split"]})
    io.write_parquet(table, snakemake.output[name],
                     io.provenance({"ids": ids, "settings": analysis["settings"], "samples": len(idx),
                                    "weights": str(snakemake.input.weights)}, chunks=chunks, device=str(device)))
s = tables["summary"].iloc[0]
log.info("%s epoch %d: top %.4g, bottom %.4g, trace %.4g, negative fraction %.3f (%.1f s)",
         ids["run"] or f"init {ids['model']} seed {ids['seed']}", ids["epoch"], s["top_eigenvalue"],
         s["bottom_eigenvalue"], s["trace"], s["negative_fraction"], s["seconds"])
