"""Rule init_weights: the initial weights every run of a (data set, model, seed) starts from."""

from lossland import io
from lossland.models import count_parameters, create_model
from lossland.pipeline import jobs

log, _ = jobs.start(snakemake.log[0], compute=False)
data_meta = io.read_json(snakemake.input.data_meta)
spec, seed = snakemake.params.model_spec, snakemake.params.seed
model = create_model(spec, data_meta["input_shape"], len(data_meta["classes"]), seed=seed)
io.save_checkpoint(model.state_dict(), snakemake.output[0], {
    "model": snakemake.wildcards.model,
    "model_spec": spec,
    "dataset": snakemake.wildcards.dataset,
    "input_shape": data_meta["input_shape"],
    "num_classes": len(data_meta["classes"]),
    "init_seed": seed,
    "epoch": 0,
    "parameters": count_parameters(model),
    "provenance": io.provenance({"model_spec": spec, "seed": seed}),
})
log.info("%s seed %d: %d parameters", snakemake.wildcards.model, seed, count_parameters(model))
