# Every figure of every family (lossland.pipeline.families.figures()), by one rule
# template: rule plot_<figure> draws results/figures/<figure>.png and .pdf with
# lossland.plots.<function> from the figure's gathered tables; its caption is
# workflow/report/<family>/<caption>. A new figure is an entry in its family's
# FIGURES table, not a new rule or script.

for _figure, (_family, _spec) in registry.figures().items():

    rule:
        name:
            f"plot_{_figure}"
        input:
            [paths.table(t) for t in _spec.tables],
        output:
            png=report(
                paths.figure(_figure),
                caption=f"../report/{_family.NAME}/{_spec.caption or _figure + '.rst'}",
                category=_spec.category or _family.CATEGORY,
                subcategory=_spec.subcategory,
            ),
            pdf=paths.figure(_figure, "pdf"),
        log:
            paths.log("plot", _figure),
        benchmark:
            paths.benchmark("plot", _figure)
        # on a cluster, figures are drawn in jobs of `group-components: figures=N` (profiles/slurm)
        group:
            "figures"
        conda:
            "../envs/lossland.yaml"
        resources:
            **job_resources("plot", compute=False),
        params:
            function=_spec.function,
            kwargs=lambda wc, name=_figure: registry.figure_kwargs(config, name),
        script:
            "../scripts/plot_figure.py"
