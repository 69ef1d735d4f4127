# Initial weights and training runs (plain and optimizer-switch) of every family that trains.


rule init_weights:
    """One file of initial weights per (data set, model, seed): every optimizer starts here."""
    input:
        data_meta=paths.prepared_meta("{dataset}"),
    output:
        paths.init_weights("{dataset}", "{model}", "{seed}"),
    log:
        paths.log("init_weights", "{dataset}/{model}_init{seed}"),
    benchmark:
        paths.benchmark("init_weights", "{dataset}/{model}_init{seed}")
    conda:
        "../envs/lossland.yaml"
    resources:
        **job_resources("data", compute=False),
    params:
        model_spec=lambda wc: config["models"][wc.model],
        seed=lambda wc: int(wc.seed),
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
        unpack(get_train_inputs),
    output:
        metrics=paths.run_metrics("{run}"),
        final=paths.run_final("{run}"),
        final_meta=paths.run_final_meta("{run}"),
        checkpoints=directory(paths.run_checkpoints("{run}")),
    log:
        paths.log("train_run", "{run}"),
    benchmark:
        paths.benchmark("train_run", "{run}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("train"),
    params:
        spec=get_run_spec,
    script:
        "../scripts/train_run.py"
