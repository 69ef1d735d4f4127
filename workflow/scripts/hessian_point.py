"""Rules hessian_init / hessian_checkpoint: the Hessian report of one set of weights."""

from pathlib import Path

from lossland import io
from lossland.data import load_prepared, subset_indices
from lossland.runner import checkpoint_name, model_from_checkpoint
from lossland.runtime import configure, pick_device, setup_logging
from lossland.spectra import SpectrumSettings, hessian_report

log = setup_logging(snakemake.log[0])
device = pick_device("cuda" if snakemake.resources.get("gpu", 0) else "cpu")
configure(device, threads=snakemake.threads)
weights = Path(snakemake.input.weights)
if weights.is_dir():
    weights = weights / checkpoint_name(snakemake.params.epoch)
model, meta = model_from_checkpoint(weights, device)
split = load_prepared(snakemake.input.data, device=device)[snakemake.params.split]
idx = subset_indices(len(split), snakemake.params.samples).to(split.y.device)  # splits are sorted by class
n = len(idx)
settings = SpectrumSettings.from_config(snakemake.params.settings)
tables = hessian_report(model, (split.x[idx], split.y[idx]), settings)
ids = dict(snakemake.params.ids)
for name, table in tables.items():
    for i, (k, v) in enumerate(ids.items()):
        table.insert(i, k, v)
    table.insert(len(ids), "split", snakemake.params.split)
    io.write_parquet(table, snakemake.output[name],
                     io.provenance({"ids": ids, "settings": snakemake.params.settings, "samples": n,
                                    "weights": str(weights)}, device=str(device)))
s = tables["summary"].iloc[0]
log.info("%s epoch %d: top %.4g, bottom %.4g, trace %.4g, negative fraction %.3f (%.1f s)",
         ids["run"] or f"init {ids['model']} seed {ids['seed']}", ids["epoch"], s["top_eigenvalue"],
         s["bottom_eigenvalue"], s["trace"], s["negative_fraction"], s["seconds"])
