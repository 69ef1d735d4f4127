# Every figure of every family (lossland.pipeline.families.figures()), by one rule
# template: rule plot_<figure> draws results/figures/<figure>.png and .pdf with
# lossland.plots.<function> from the figure's gathered tables, and renders its caption
# template workflow/report/<family>/<caption> with the numbers the figure shows into
# results/captions/<figure>.rst, which the report includes (workflow/report/figure.rst).
# A new figure is an entry in its family's FIGURES table, not a new rule or script.

CAPTION_TEMPLATES = Path(workflow.basedir) / "workflow" / "report"

for _figure, (_family, _spec) in registry.figures().items():

    rule:
        name:
            f"plot_{_figure}"
        input:
            [paths.table(t) for t in _spec.tables],
        output:
            png=report(
                paths.figure(_figure),
                caption="../report/figure.rst",
                category=_spec.category or _family.CATEGORY,
                subcategory=_spec.subcategory,
            ),
            pdf=paths.figure(_figure, "pdf"),
            caption=paths.caption(_figure),
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
            # a function: a string param would have its {{ }} read as wildcards
            template=lambda wc, text=(CAPTION_TEMPLATES / registry.caption_template(_figure)).read_text(): text,
            section=registry.figure_section(_figure),
        script:
            "../scripts/plot_figure.py"
