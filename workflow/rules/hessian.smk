# Hessian spectra of the chosen runs of one study: at the initial weights (once per
# data set, model and seed) and at saved epochs; gathered tables and figures.

HESSIAN_TABLES = ["eigenvalues", "density", "summary"]


def hessian_runs():
    """The runs analysed (chosen runs of `hessian.study`, restricted by the section)."""
    cfg = config["hessian"]
    return lstudy.analysis_runs(config, "hessian", chosen_run_names(cfg["study"]))


def hessian_point_files(wildcards):
    cfg = config["hessian"]
    files = []
    for run in hessian_runs():
        spec = RUNS[run]
        for epoch in cfg["epochs"]:
            if epoch == 0:
                base = f"{RESULTS}/hessian/init/{spec['dataset']}/{spec['model']}_init{spec['init_seed']}"
            else:
                base = f"{RESULTS}/hessian/runs/{run}/epoch{epoch}"
            files += [f"{base}/{table}.parquet" for table in HESSIAN_TABLES]
    return sorted(set(files))


def checkpoint_input(run, epoch):
    """The file (final weights) or folder (saved checkpoints) holding a run's weights at `epoch`."""
    paths = run_paths(run)
    return paths["final"] if int(epoch) == RUNS[run]["training"]["epochs"] else paths["checkpoints"]


rule hessian_init:
    """Hessian of the initial weights of a (data set, model, seed): shared by every optimizer."""
    input:
        data=f"{RESULTS}/data/{{dataset}}.safetensors",
        weights=f"{RESULTS}/init/{{dataset}}/{{model}}_init{{seed}}.safetensors",
    output:
        **{t: f"{RESULTS}/hessian/init/{{dataset}}/{{model}}_init{{seed}}/{t}.parquet" for t in HESSIAN_TABLES},
    params:
        settings=lambda wc: config["hessian"]["settings"],
        split=lambda wc: config["hessian"]["split"],
        samples=lambda wc: config["hessian"]["samples"],
        epoch=0,
        ids=lambda wc: {"run": "", "dataset": wc.dataset, "model": wc.model, "optimizer": "", "algorithm": "",
                        "lr": float("nan"), "seed": int(wc.seed), "epoch": 0},
    log:
        f"{RESULTS}/logs/hessian_init/{{dataset}}/{{model}}_init{{seed}}.log",
    threads: THREADS
    resources:
        **compute_resources(),
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/hessian_point.py"


rule hessian_checkpoint:
    """Hessian of a run's weights at a saved epoch."""
    input:
        data=lambda wc: prepared_data(RUNS[wc.run]["dataset"]),
        weights=lambda wc: checkpoint_input(wc.run, wc.epoch),
    output:
        **{t: f"{RESULTS}/hessian/runs/{{run}}/epoch{{epoch}}/{t}.parquet" for t in HESSIAN_TABLES},
    params:
        settings=lambda wc: config["hessian"]["settings"],
        split=lambda wc: config["hessian"]["split"],
        samples=lambda wc: config["hessian"]["samples"],
        epoch=lambda wc: int(wc.epoch),
        ids=lambda wc: lstudy.run_ids(RUNS[wc.run]) | {"epoch": int(wc.epoch)},
    log:
        f"{RESULTS}/logs/hessian_checkpoint/{{run}}/epoch{{epoch}}.log",
    threads: THREADS
    resources:
        **compute_resources(),
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/hessian_point.py"


rule gather_hessian:
    """Every analysed point in three tables; epoch-0 rows are copied to every run of that init."""
    input:
        hessian_point_files,
    output:
        **{t: f"{RESULTS}/tables/hessian_{t}.parquet" for t in HESSIAN_TABLES},
    params:
        runs=lambda wc: [lstudy.run_ids(RUNS[r]) for r in hessian_runs()],
    log:
        f"{RESULTS}/logs/gather_hessian.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/gather_hessian.py"


rule plot_hessian_density:
    input:
        f"{RESULTS}/tables/hessian_density.parquet",
    output:
        report(f"{RESULTS}/figures/hessian_density.png", caption="../report/hessian_density.rst",
               category="Hessian"),
    log:
        f"{RESULTS}/logs/plot_hessian_density.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/plot_hessian.py"


rule plot_hessian_sharpness:
    input:
        f"{RESULTS}/tables/hessian_summary.parquet",
    output:
        report(f"{RESULTS}/figures/hessian_sharpness.png", caption="../report/hessian_sharpness.rst",
               category="Hessian"),
    log:
        f"{RESULTS}/logs/plot_hessian_sharpness.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/plot_hessian.py"


rule plot_hessian_negative_fraction:
    input:
        f"{RESULTS}/tables/hessian_summary.parquet",
    output:
        report(f"{RESULTS}/figures/hessian_negative_fraction.png",
               caption="../report/hessian_negative_fraction.rst", category="Hessian"),
    log:
        f"{RESULTS}/logs/plot_hessian_negative_fraction.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/plot_hessian.py"
