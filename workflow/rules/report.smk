# The findings (lossland.pipeline.findings): every family's claims measured on this run's
# tables, one verdict each, as results/tables/findings.parquet, the report's findings page
# and the overview that the report's front page (workflow/report/workflow.rst) includes.


localrules:
    findings,


rule findings:
    """Each claim of the papers, measured, with a verdict (reproduced / not reproduced / not run)."""
    input:
        **{name: paths.table(name) for name in registry.tables(config)},
    output:
        table=paths.table("findings"),
        page=report(
            paths.report_page("findings", "html"),
            caption="../report/findings.rst",
            category="Findings",
        ),
        overview=paths.report_page("overview"),
    log:
        paths.log("findings", "findings"),
    benchmark:
        paths.benchmark("findings", "findings")
    run:
        from lossland.pipeline import findings as lfindings

        lfindings.write(config, dict(input), output.table, output.page, output.overview)
