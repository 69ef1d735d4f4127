# Hessian spectra of the chosen runs of one study (lossland.pipeline.families.hessian):
# at the initial weights (once per data set, model and seed) and at saved epochs;
# gathered tables (the figures are drawn by figures.smk).

from lossland.pipeline.analysis import analysis_runs
from lossland.pipeline.families import hessian as lhessian
from lossland.pipeline.runs import run_ids

HESSIAN_INIT = {"dataset": "{dataset}", "model": "{model}", "seed": "{seed}"}
HESSIAN_CHECKPOINT = {"run": "{run}", "epoch": "{epoch}"}


rule hessian_init:
    """Hessian of the initial weights of a (data set, model, seed): shared by every optimizer."""
    input:
        data=paths.prepared_data("{dataset}"),
        weights=paths.init_weights("{dataset}", "{model}", "{seed}"),
    output:
        **{t: lhessian.point_path("init", HESSIAN_INIT, t) for t in lhessian.POINT_TABLES},
    log:
        paths.log("hessian_init", "{dataset}/{model}_init{seed}"),
    benchmark:
        paths.benchmark("hessian_init", "{dataset}/{model}_init{seed}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("hessian"),
    params:
        analysis=lambda wc: lhessian.job_settings(config),
        epoch=0,
        ids=lambda wc: lhessian.init_ids(wc.dataset, wc.model, int(wc.seed)),
    script:
        "../scripts/hessian_point.py"


rule hessian_checkpoint:
    """Hessian of a run's weights at a saved epoch."""
    input:
        data=lambda wc: paths.prepared_data(RUNS[wc.run]["dataset"]),
        weights=lambda wc: get_weights(wc.run, wc.epoch),
    output:
        **{t: lhessian.point_path("checkpoint", HESSIAN_CHECKPOINT, t) for t in lhessian.POINT_TABLES},
    log:
        paths.log("hessian_checkpoint", "{run}/epoch{epoch}"),
    benchmark:
        paths.benchmark("hessian_checkpoint", "{run}/epoch{epoch}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("hessian"),
    params:
        analysis=lambda wc: lhessian.job_settings(config),
        epoch=lambda wc: int(wc.epoch),
        ids=lambda wc: run_ids(RUNS[wc.run]) | {"epoch": int(wc.epoch)},
    script:
        "../scripts/hessian_point.py"


localrules:
    gather_hessian,


rule gather_hessian:
    """Every analysed point in three tables; epoch-0 rows are copied to every run of that init."""
    input:
        unpack(lambda wc: lhessian.point_files(config, RUNS, get_chosen("hessian"))),
    output:
        **{t: paths.table(f"hessian_{t}") for t in lhessian.POINT_TABLES},
    log:
        paths.log("gather_hessian", "hessian"),
    benchmark:
        paths.benchmark("gather_hessian", "hessian")
    params:
        runs=lambda wc: [run_ids(RUNS[r]) for r in analysis_runs(config["hessian"], RUNS, get_chosen("hessian"))],
    run:
        lhessian.gather_tables(input, output, params.runs, log[0])
