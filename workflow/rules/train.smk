# Initial weights, training runs, the gathered metrics table and learning curves.


rule init_weights:
    """One file of initial weights per (data set, model, seed): every optimizer starts here."""
    input:
        data_meta=f"{RESULTS}/data/{{dataset}}.json",
    output:
        f"{RESULTS}/init/{{dataset}}/{{model}}_init{{seed}}.safetensors",
    params:
        model_spec=lambda wc: config["models"][wc.model],
        seed=lambda wc: int(wc.seed),
    log:
        f"{RESULTS}/logs/init_weights/{{dataset}}/{{model}}_init{{seed}}.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/init_weights.py"


rule train_run:
    """Train one run; resumes from its last finished epoch if it was interrupted."""
    input:
        data=lambda wc: prepared_data(RUNS[wc.run]["dataset"]),
        init=lambda wc: "{results}/init/{dataset}/{model}_init{seed}.safetensors".format(
            results=RESULTS, **{k: RUNS[wc.run][k] for k in ("dataset", "model")},
            seed=RUNS[wc.run]["init_seed"]),
    output:
        metrics=f"{RESULTS}/runs/{{run}}/metrics.parquet",
        final=f"{RESULTS}/runs/{{run}}/final.safetensors",
        final_meta=f"{RESULTS}/runs/{{run}}/final.json",
        checkpoints=directory(f"{RESULTS}/runs/{{run}}/checkpoints"),
    params:
        spec=run_spec,
    log:
        f"{RESULTS}/logs/train_run/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_run/{{run}}.tsv"
    threads: THREADS
    resources:
        **compute_resources(),
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/train_run.py"


rule gather_metrics:
    """All runs' per-epoch metrics in one long table."""
    input:
        [run_paths(r)["metrics"] for r in RUNS],
    output:
        f"{RESULTS}/tables/optimizer_study_metrics.parquet",
    log:
        f"{RESULTS}/logs/gather_metrics.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/gather_tables.py"


rule plot_learning_curves:
    input:
        f"{RESULTS}/tables/optimizer_study_metrics.parquet",
    output:
        report(
            f"{RESULTS}/figures/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Training",
        ),
    log:
        f"{RESULTS}/logs/plot_learning_curves.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/plot_learning_curves.py"
