# Sharpness against batch size (Keskar et al.) and architecture (Li et al.: skip connections,
# depth, width), lossland.pipeline.families.sharpness. The runs are trained by train.smk; here:
# the Hessian report at each solution, the line from the small-batch solution to each other,
# each architecture's random plane (sharded by whole grid rows) and its convexity map;
# gathered tables (the figures are drawn by figures.smk).

from lossland.pipeline.families import sharpness as lsharp


localrules:
    gather_batch_size,
    gather_architecture,


rule sharpness_hessian:
    """The Hessian report (top eigenvalue, trace, epsilon-sharpness) of a run's solution."""
    input:
        data=lambda wc: paths.prepared_data(RUNS[wc.run]["dataset"]),
        weights=lambda wc: get_weights(wc.run, RUNS[wc.run]["training"]["epochs"]),
    output:
        **{t: lsharp.hessian_path("{run}", t) for t in lsharp.HESSIAN_TABLES},
    log:
        paths.log("sharpness_hessian", "{run}"),
    benchmark:
        paths.benchmark("sharpness_hessian", "{run}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("hessian"),
    params:
        analysis=lambda wc: lsharp.hessian_params(config, wc.run),
        epoch=lambda wc: int(RUNS[wc.run]["training"]["epochs"]),
        ids=lambda wc: lsharp.run_columns(RUNS[wc.run], lsharp.section_of(config, wc.run))
        | {"epoch": int(RUNS[wc.run]["training"]["epochs"])},
    script:
        "../scripts/hessian_point.py"


rule batch_size_line:
    """The 1-D line from the small-batch solution to run {run}'s, on every split."""
    input:
        data=lambda wc: paths.prepared_data(RUNS[wc.run]["dataset"]),
        start=lambda wc: get_weights(
            lsharp.small_batch_run(config), RUNS[lsharp.small_batch_run(config)]["training"]["epochs"]
        ),
        end=lambda wc: get_weights(wc.run, RUNS[wc.run]["training"]["epochs"]),
    output:
        lsharp.line_path("{run}"),
    log:
        paths.log("batch_size_line", "{run}"),
    benchmark:
        paths.benchmark("batch_size_line", "{run}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("landscape"),
    params:
        p=lambda wc: lsharp.line_params(config, wc.run, RUNS),
    script:
        "../scripts/batch_size_line.py"


rule architecture_surface_shard:
    """One shard (whole grid rows) of the filter-normalised random plane around an architecture's solution."""
    input:
        data=lambda wc: paths.prepared_data(RUNS[wc.run]["dataset"]),
        w0=lambda wc: get_weights(wc.run, RUNS[wc.run]["training"]["epochs"]),
    output:
        lsharp.shard_path("{run}", "{shard}", "{shards}"),
    log:
        paths.log("architecture_surface_shard", "{run}/shard{shard}-of{shards}"),
    benchmark:
        paths.benchmark("architecture_surface_shard", "{run}/shard{shard}-of{shards}")
    wildcard_constraints:
        shard=r"\d+",
        shards=r"\d+",
    # batched on a cluster (profiles/slurm: architecture_shards=N); a group of its own, since Snakemake
    # 9.27 fails (KeyError in its scheduler) when one group-components batch mixes rules
    group:
        "architecture_shards"
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("landscape"),
    params:
        p=lambda wc: lsharp.surface_job_params(config, wc.run, RUNS),
        shard=lambda wc: int(wc.shard),
        shards=lambda wc: int(wc.shards),
    script:
        "../scripts/landscape_job.py"


rule architecture_convexity:
    """Li et al.'s convexity map |lambda_min / lambda_max| on a coarse grid of an architecture's plane."""
    input:
        data=lambda wc: paths.prepared_data(RUNS[wc.run]["dataset"]),
        weights=lambda wc: get_weights(wc.run, RUNS[wc.run]["training"]["epochs"]),
    output:
        lsharp.convexity_path("{run}"),
    log:
        paths.log("architecture_convexity", "{run}"),
    benchmark:
        paths.benchmark("architecture_convexity", "{run}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("hessian"),
    params:
        p=lambda wc: lsharp.convexity_params(config, wc.run, RUNS),
    script:
        "../scripts/architecture_convexity.py"


rule gather_batch_size:
    """Every batch size's solution (last metrics and Hessian) in one table, and every line in another."""
    input:
        unpack(lambda wc: lsharp.gather_inputs(config, "batch_size")),
    output:
        **{t: paths.table(t) for t in lsharp.BATCH_TABLES},
    log:
        paths.log("gather_batch_size", "batch_size"),
    benchmark:
        paths.benchmark("gather_batch_size", "batch_size")
    params:
        ids=lambda wc: [lsharp.run_columns(s, "batch_size") for s in lsharp.section_specs(config, "batch_size")],
    run:
        lsharp.gather_tables("batch_size", input, output, params.ids, log=log[0])


rule gather_architecture:
    """Every architecture's solution, surface and convexity map in one table each."""
    input:
        unpack(lambda wc: lsharp.gather_inputs(config, "architecture")),
    output:
        **{t: paths.table(t) for t in lsharp.ARCH_TABLES},
    log:
        paths.log("gather_architecture", "architecture"),
    benchmark:
        paths.benchmark("gather_architecture", "architecture")
    params:
        ids=lambda wc: [lsharp.run_columns(s, "architecture") for s in lsharp.section_specs(config, "architecture")],
        settings=lambda wc: lsharp.plane_settings(config),
    run:
        lsharp.gather_tables("architecture", input, output, params.ids, params.settings, log[0])
