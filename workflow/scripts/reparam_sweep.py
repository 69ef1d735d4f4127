"""Rule reparam_sweep: sharpness measures of one transform of a run's weights against alpha."""

import sys

from tqdm import tqdm

from lossland import io
from lossland.data import load_prepared, subset_indices
from lossland.pipeline import jobs
from lossland.pipeline.tables import with_ids
from lossland.reparam import SweepSettings, named_transform, reparametrization_sweep

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
analysis, ids = snakemake.params.analysis, dict(snakemake.params.ids)
model, _ = jobs.load_weights([(snakemake.input.weights, snakemake.params.epoch)], device)
model.eval()  # dropout off: the rescalings are checked on the eval-mode graph
data = load_prepared(snakemake.input.data, device=device)
split, test = data[analysis["split"]], data["test"]
idx = subset_indices(len(split), analysis["samples"]).to(split.y.device)  # splits are sorted by class
transform, blocks = named_transform(model, ids["transform"], snakemake.params.layers)
with tqdm(total=len(analysis["alphas"]), desc=f"{ids['run']} {ids['transform']} {ids['layers']}", unit="alpha",
          file=sys.stderr) as bar:
    tables = reparametrization_sweep(model, transform, analysis["alphas"], (split.x[idx], split.y[idx]),
                                     (test.x, test.y), blocks=blocks,
                                     settings=SweepSettings.from_config(analysis["settings"]), progress=bar)
ids.update(scaled=", ".join(blocks), split=analysis["split"])
for name, table in tables.items():
    with_ids(table, ids)
    io.write_parquet(table, snakemake.output[name],
                     io.provenance({"ids": ids, "analysis": analysis, "weights": str(snakemake.input.weights)},
                                   device=str(device)))
s = tables["sweep"]
log.info("%s %s %s: top eigenvalue %.3g..%.3g, trace %.3g..%.3g, max |output change| %.2g (%.1f s)", ids["run"],
         ids["transform"], ids["layers"], s["top_eigenvalue"].min(), s["top_eigenvalue"].max(), s["trace"].min(),
         s["trace"].max(), s["max_output_diff"].max(), s["seconds"].sum())
