"""Rule select_lr: choose the learning rate of one optimizer's grid on the validation split."""

from lossland import io
from lossland.io import concat_parquet
from lossland.runtime import setup_logging
from lossland.selection import select_learning_rate, selected_lr

log = setup_logging(snakemake.log[0])
metrics, parts = concat_parquet(list(snakemake.input))
table = select_learning_rate(metrics, snakemake.params.metric)
table.insert(0, "study", snakemake.params.study)
io.write_parquet(table, snakemake.output[0], io.provenance({"metric": snakemake.params.metric, "parts": parts}))
log.info("%s %s: lr %g chosen by %s\n%s", snakemake.wildcards.model, snakemake.wildcards.optimizer,
         selected_lr(table), snakemake.params.metric, table.to_string(index=False))
