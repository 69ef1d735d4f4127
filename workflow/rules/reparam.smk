# dinh2017 reparametrisations (lossland.pipeline.families.reparam): at one saved epoch of
# each run of the `reparam` section, a sweep of alpha per transform and layers, and the
# input reparametrisations; gathered tables (the figures are drawn by figures.smk).

from lossland.pipeline.families import reparam as lreparam
from lossland.pipeline.runs import run_ids


rule reparam_sweep:
    """Sharpness against alpha for one function-preserving transform of a run's weights."""
    input:
        data=lambda wc: paths.prepared_data(RUNS[wc.run]["dataset"]),
        weights=lambda wc: get_weights(wc.run, wc.epoch),
    output:
        **{t: lreparam.sweep_path("{run}", "{epoch}", "{transform}", "{layers}", t) for t in lreparam.SWEEP_TABLES},
    log:
        paths.log("reparam_sweep", "{run}/epoch{epoch}/{transform}_{layers}"),
    benchmark:
        paths.benchmark("reparam_sweep", "{run}/epoch{epoch}/{transform}_{layers}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("reparam"),
    params:
        analysis=lambda wc: lreparam.job_settings(config, "sweep"),
        epoch=lambda wc: int(wc.epoch),
        layers=lambda wc: lreparam.parse_layers(wc.transform, wc.layers),
        ids=lambda wc: run_ids(RUNS[wc.run]) | {"epoch": int(wc.epoch), "transform": wc.transform, "layers": wc.layers},
    script:
        "../scripts/reparam_sweep.py"


rule reparam_input:
    """The same prediction function on reparametrised inputs: input-gradient norms."""
    input:
        data=lambda wc: paths.prepared_data(RUNS[wc.run]["dataset"]),
        weights=lambda wc: get_weights(wc.run, wc.epoch),
    output:
        **{t: lreparam.input_path("{run}", "{epoch}", t) for t in lreparam.INPUT_TABLES},
    log:
        paths.log("reparam_input", "{run}/epoch{epoch}"),
    benchmark:
        paths.benchmark("reparam_input", "{run}/epoch{epoch}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("reparam"),
    params:
        analysis=lambda wc: lreparam.job_settings(config, "input"),
        epoch=lambda wc: int(wc.epoch),
        ids=lambda wc: run_ids(RUNS[wc.run]) | {"epoch": int(wc.epoch)},
    script:
        "../scripts/reparam_input.py"


localrules:
    gather_reparam,


rule gather_reparam:
    """Every sweep and input job in one table each, and the spread of each measure per sweep."""
    input:
        unpack(lambda wc: lreparam.job_files(config, RUNS)),
    output:
        **{t: paths.table(t) for t in lreparam.TABLES},
    log:
        paths.log("gather_reparam", "reparam"),
    benchmark:
        paths.benchmark("gather_reparam", "reparam")
    run:
        lreparam.gather_tables(input, output, log[0])
