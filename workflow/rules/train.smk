# Initial weights, training runs (plain and optimizer-switch) and the per-study metrics tables.


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
    """Train one run; resumes from its last finished epoch if it was interrupted.

    A switch run (e.g. S2-A6) does not retrain its prefix: it starts from the
    checkpoint its prefix run (the first optimizer's own run, a separate cached
    job) saved at the switch epoch, with a fresh second optimizer. The prefix's
    params do not mention the second optimizer, so changing that never reruns it.
    """
    input:
        unpack(train_inputs),
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


rule gather_study_metrics:
    """All runs of one study (every learning rate of the grids), per epoch, in one long table."""
    input:
        study_metrics,
    output:
        f"{RESULTS}/tables/{{study}}_metrics.parquet",
    log:
        f"{RESULTS}/logs/gather_study_metrics/{{study}}.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/gather_tables.py"


rule plot_study_learning_curves:
    """Learning curves of every run of a study (the chosen runs are in the figures)."""
    input:
        f"{RESULTS}/tables/{{study}}_metrics.parquet",
    output:
        report(
            f"{RESULTS}/figures/{{study}}_learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Training",
            subcategory="{study}",
        ),
    log:
        f"{RESULTS}/logs/plot_learning_curves/{{study}}.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/plot_learning_curves.py"
