# im2016's optimizer study: learning-rate selection on the validation split and the
# figures of the chosen runs (Fig 4, 7 and 12-15, 9, 11).


checkpoint select_lr:
    """Choose one optimizer's learning rate from its grid on the validation split.

    A Snakemake checkpoint: which runs feed the figures (and later the surfaces)
    is known only once this table exists.
    """
    input:
        lambda wc: [run_paths(r)["metrics"]
                    for r in SELECTION_GROUPS[wc.study][(wc.model, wc.optimizer)]],
    output:
        f"{RESULTS}/selection/{{study}}/{{model}}_{{optimizer}}.parquet",
    params:
        metric=lambda wc: config[wc.study]["selection"]["metric"],
        study=lambda wc: wc.study,
    log:
        f"{RESULTS}/logs/select_lr/{{study}}/{{model}}_{{optimizer}}.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/select_lr.py"


rule gather_lr_selection:
    """Every grid's selection in one table (one row per learning rate, `selected` marks the choice)."""
    input:
        [selection_table(study, model, optimizer)
         for study, groups in SELECTION_GROUPS.items() for (model, optimizer) in groups],
    output:
        report(
            f"{RESULTS}/tables/lr_selection.parquet",
            caption="../report/lr_selection.rst",
            category="Optimizers",
        ),
    log:
        f"{RESULTS}/logs/gather_lr_selection.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/gather_tables.py"


rule gather_chosen_metrics:
    """Per-epoch metrics of the chosen runs of a study (one learning rate per optimizer)."""
    input:
        chosen_metrics,
    output:
        f"{RESULTS}/tables/{{study}}_chosen_metrics.parquet",
    log:
        f"{RESULTS}/logs/gather_chosen_metrics/{{study}}.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/gather_tables.py"


rule plot_fig4_optimizer_accuracy:
    """im2016 Fig 4: final train and test accuracy per optimizer, one colour per initialisation."""
    input:
        f"{RESULTS}/tables/optimizer_study_chosen_metrics.parquet",
    output:
        report(
            f"{RESULTS}/figures/fig4_optimizer_accuracy.png",
            caption="../report/fig4_optimizer_accuracy.rst",
            category="Optimizers",
        ),
    log:
        f"{RESULTS}/logs/plot_fig4_optimizer_accuracy.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/plot_fig4_optimizer_accuracy.py"


rule plot_fig7_switching:
    """im2016 Fig 7, 12-15: accuracy and distance from init of the switching variants."""
    input:
        f"{RESULTS}/tables/switch_study_metrics.parquet",
    output:
        report(
            f"{RESULTS}/figures/fig7_switching.png",
            caption="../report/fig7_switching.rst",
            category="Optimizers",
        ),
    params:
        switches=lambda wc: config["switch_study"]["switches"],
    log:
        f"{RESULTS}/logs/plot_fig7_switching.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/plot_fig7_switching.py"


rule plot_fig9_rk2_training:
    """im2016 Fig 9: training curves of the RK2 optimizers against SGD, SGD x2 and Adam."""
    input:
        f"{RESULTS}/tables/rk2_study_chosen_metrics.parquet",
    output:
        report(
            f"{RESULTS}/figures/fig9_rk2_training.png",
            caption="../report/fig9_rk2_training.rst",
            category="Optimizers",
        ),
    log:
        f"{RESULTS}/logs/plot_fig9_rk2_training.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/plot_fig9_rk2_training.py"


rule plot_fig11_exotic_inits:
    """im2016 Fig 11: learning curves from N(-10, 0.01) and N(-1, 1) inits, with and without BN."""
    input:
        f"{RESULTS}/tables/init_study_chosen_metrics.parquet",
    output:
        report(
            f"{RESULTS}/figures/fig11_exotic_inits.png",
            caption="../report/fig11_exotic_inits.rst",
            category="Optimizers",
        ),
    log:
        f"{RESULTS}/logs/plot_fig11_exotic_inits.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/plot_fig11_exotic_inits.py"
