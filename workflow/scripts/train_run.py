"""Rule train_run: train one run of the run table and write its metrics and checkpoints.
A switch run continues from its prefix run's checkpoint at the switch epoch."""

from lossland import io
from lossland.data import load_prepared
from lossland.pipeline import jobs
from lossland.pipeline.runner import execute_run, switch_start_from

log, device = jobs.start(snakemake.log[0], gpu=snakemake.resources.get("gpu", 0), threads=snakemake.threads)
spec = snakemake.params.spec
data = load_prepared(snakemake.input.data, device=device)
init_state, _ = io.load_checkpoint(snakemake.input.init)
switch_start = None
if spec["kind"] == "switch":
    switch_start = switch_start_from(snakemake.input.prefix_metrics, snakemake.input.prefix_checkpoints,
                                     spec["switch_epoch"])
log.info("%s on %s (%d threads)", spec["run"], device, snakemake.threads)
state = execute_run(
    spec, data, init_state,
    metrics_path=snakemake.output.metrics,
    final_path=snakemake.output.final,
    checkpoints_dir=snakemake.output.checkpoints,
    device=device,
    switch_start=switch_start,
)
last = state.records[-1]
log.info("%s: epoch %d train_acc %.4f test_acc %.4f%s", spec["run"], state.epoch, last["train_acc"],
         last.get("test_acc", float("nan")), " (diverged)" if state.diverged else "")
