# im2016's optimizer studies (lossland.pipeline.families.im2016): per-study metrics,
# learning-rate selection on the validation split (a Snakemake checkpoint) and the
# metrics of the chosen runs (`get_chosen_run_names` in common.smk), which the
# figures and the analysing families (hessian, landscape) read.

from functools import partial


localrules:
    select_lr,
    gather_lr_selection,
    gather_study_metrics,
    gather_chosen_metrics,


checkpoint select_lr:
    """Choose one optimizer's learning rate from its grid on the validation split.

    A Snakemake checkpoint: which runs feed the figures (and later the surfaces)
    is known only once this table exists.
    """
    input:
        lambda wc: [paths.run_metrics(r) for r in SELECTION_GROUPS[wc.study][(wc.model, wc.optimizer)]],
    output:
        im2016.selection_path("{study}", "{model}", "{optimizer}"),
    log:
        paths.log("select_lr", "{study}/{model}_{optimizer}"),
    benchmark:
        paths.benchmark("select_lr", "{study}/{model}_{optimizer}")
    params:
        metric=lambda wc: config[wc.study]["selection"]["metric"],
    run:
        select = partial(im2016.selection_table, metric=params.metric, study=wildcards.study)
        ltables.gather(input, output[0], select, log=log[0], metric=params.metric)


rule gather_lr_selection:
    """Every grid's selection in one table (one row per learning rate, `selected` marks the choice)."""
    input:
        [
            im2016.selection_path(study, model, optimizer)
            for study, groups in SELECTION_GROUPS.items()
            for (model, optimizer) in groups
        ],
    output:
        report(
            paths.table("lr_selection"),
            caption="../report/im2016/lr_selection.rst",
            category=im2016.CATEGORY,
        ),
    log:
        paths.log("gather_lr_selection", "lr_selection"),
    benchmark:
        paths.benchmark("gather_lr_selection", "lr_selection")
    run:
        ltables.gather(input, output[0], log=log[0])


rule gather_study_metrics:
    """All runs of one study (every learning rate of the grids), per epoch, in one long table."""
    input:
        lambda wc: [paths.run_metrics(r) for r in get_study_run_names(wc.study)],
    output:
        paths.table("{study}_metrics"),
    log:
        paths.log("gather_study_metrics", "{study}"),
    benchmark:
        paths.benchmark("gather_study_metrics", "{study}")
    run:
        ltables.gather(input, output[0], log=log[0])


rule gather_chosen_metrics:
    """Per-epoch metrics of the chosen runs of a study (one learning rate per optimizer)."""
    input:
        lambda wc: [paths.run_metrics(r) for r in get_chosen_run_names(wc.study)],
    output:
        paths.table("{study}_chosen_metrics"),
    log:
        paths.log("gather_chosen_metrics", "{study}"),
    benchmark:
        paths.benchmark("gather_chosen_metrics", "{study}")
    run:
        ltables.gather(input, output[0], log=log[0])
