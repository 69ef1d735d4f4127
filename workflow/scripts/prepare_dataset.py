"""Rule prepare_dataset: read a data set's source, write its prepared tensors (images or token sequences)."""

from lossland import data, io
from lossland.pipeline import jobs

log, _ = jobs.start(snakemake.log[0], compute=False)
spec = snakemake.params.spec
prepared = data.prepare_source(spec)
data.save_prepared(prepared, snakemake.output.tensors,
                   meta={"dataset": snakemake.params.name, "provenance": io.provenance(spec)})
log.info("%s: %s, %d classes, input %s", snakemake.params.name, prepared.meta["sizes"],
         prepared.num_classes, prepared.input_shape)
