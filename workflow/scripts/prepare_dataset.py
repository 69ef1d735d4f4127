"""Rule prepare_dataset: read a data set's source, write normalised tensors."""

from lossland import data, io
from lossland.pipeline import jobs

log, _ = jobs.start(snakemake.log[0], compute=False)
spec = snakemake.params.spec
raw = data.read_source(spec["source"], spec.get("path"), download=spec.get("download", False))
prepared = data.prepare(
    raw,
    classes=spec.get("classes"),
    train_size=spec.get("train_size"),
    test_size=spec.get("test_size"),
    val_size=spec.get("val_size", 0),
    image_size=spec.get("image_size"),
    seed=spec.get("subset_seed", 0),
)
data.save_prepared(prepared, snakemake.output.tensors,
                   meta={"dataset": snakemake.params.name, "provenance": io.provenance(spec)})
log.info("%s: %s, %d classes, input %s", snakemake.params.name, prepared.meta["sizes"],
         prepared.num_classes, prepared.input_shape)
