"""Rule reparam_input: input-gradient norms of a run's prediction function in other input coordinates."""

from lossland import io
from lossland.data import load_prepared, subset_indices
from lossland.pipeline import jobs
from lossland.pipeline.tables import with_ids
from lossland.reparam import input_reparametrization_sweep

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
analysis, ids = snakemake.params.analysis, dict(snakemake.params.ids)
model, _ = jobs.load_weights([(snakemake.input.weights, snakemake.params.epoch)], device)
model.eval()  # dropout off: predictions and input gradients of the eval-mode function
data = load_prepared(snakemake.input.data, device=device)
test = data["test"]
idx = subset_indices(len(test), analysis["input_samples"]).to(test.y.device)  # splits are sorted by class
tables = input_reparametrization_sweep(model, test.x[idx], data["train"].x, analysis["alphas"], analysis["input"],
                                       whiten_eps=analysis["whiten_eps"])
for name, key in (("input", "input"), ("input_examples", "examples")):
    table = with_ids(tables[key], ids)
    io.write_parquet(table, snakemake.output[name],
                     io.provenance({"ids": ids, "analysis": analysis, "weights": str(snakemake.input.weights)},
                                   device=str(device)))
t = tables["input"].set_index("transform")
log.info("%s: mean input-gradient norm %.3g (x), %s; max |output change| %.2g", ids["run"],
         t.loc["identity", "mean_grad_norm"],
         ", ".join(f"{k} {t.loc[k, 'mean_grad_norm']:.3g} (rank corr {t.loc[k, 'rank_correlation']:.2f})"
                   for k in analysis["input"]), t["max_output_diff"].max())
