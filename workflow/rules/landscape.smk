# Loss landscapes of the chosen runs of one study (lossland.pipeline.families.landscape):
# im2016 Fig 2, 3, 5, 6, 7 right column, 10, Table 1; Li et al. random and PCA planes.
# Lines are one job each; planes are split into shards of whole grid rows (one job
# each), gathered into one table per surface, then into one table per kind.

from functools import partial

from lossland.pipeline.families import landscape as lland

LANDSCAPE_NAME = "[A-Za-z0-9][A-Za-z0-9._-]*"


localrules:
    gather_landscape_surface,
    gather_landscape_table,


rule landscape_line:
    """One 1-D line (init->final, final->final, distance path, switching lines) on every split."""
    input:
        unpack(lambda wc: lland.job_inputs(config, RUNS, get_chosen("landscape"), wc.kind, wc.name)),
    output:
        lland.surface_path("{kind}", "{name}"),
    log:
        paths.log("landscape", "{kind}/{name}"),
    benchmark:
        paths.benchmark("landscape_line", "{kind}/{name}")
    wildcard_constraints:
        kind="|".join(lland.LINE_KINDS),
        name=LANDSCAPE_NAME,
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("landscape"),
    params:
        p=lambda wc: lland.job_params(config, RUNS, get_chosen("landscape"), wc.kind, wc.name),
        shard=0,
        shards=1,
    script:
        "../scripts/landscape_job.py"


rule landscape_pca_directions:
    """Top-2 PCA directions of a run's saved checkpoints and the trajectory's coordinates on them."""
    input:
        unpack(lambda wc: lland.job_inputs(config, RUNS, get_chosen("landscape"), "pca", wc.name, trajectory=True)),
    output:
        **lland.pca_files("{name}"),
    log:
        paths.log("landscape", "pca_directions/{name}"),
    benchmark:
        paths.benchmark("landscape_pca_directions", "{name}")
    conda:
        "../envs/lossland.yaml"
    resources:
        **job_resources("landscape", compute=False),
    params:
        # not the grid: the directions do not depend on it
        p=lambda wc: lland.job_params(config, RUNS, get_chosen("landscape"), "pca", wc.name, grid=False),
    script:
        "../scripts/landscape_pca_directions.py"


rule landscape_shard:
    """One shard (whole grid rows) of a 2-D plane on every split."""
    input:
        unpack(lambda wc: lland.job_inputs(config, RUNS, get_chosen("landscape"), wc.kind, wc.name)),
    output:
        lland.shard_path("{kind}", "{name}", "{shard}", "{shards}"),
    log:
        paths.log("landscape", "shards/{kind}/{name}/shard{shard}-of{shards}"),
    benchmark:
        paths.benchmark("landscape_shard", "{kind}/{name}/shard{shard}-of{shards}")
    wildcard_constraints:
        kind="|".join(lland.PLANE_KINDS),
        name=LANDSCAPE_NAME,
        shard=r"\d+",
        shards=r"\d+",
    # on a cluster, shards of every plane are batched into jobs of
    # `group-components: landscape_shards=N` (profiles/slurm); ignored locally
    group:
        "landscape_shards"
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("landscape"),
    params:
        p=lambda wc: lland.job_params(config, RUNS, get_chosen("landscape"), wc.kind, wc.name),
        shard=lambda wc: int(wc.shard),
        shards=lambda wc: int(wc.shards),
    script:
        "../scripts/landscape_job.py"


rule gather_landscape_surface:
    """A plane's shards in one table (checked to cover the grid exactly once)."""
    input:
        lambda wc: lland.shard_files(config, RUNS, get_chosen("landscape"), wc.kind, wc.name),
    output:
        lland.surface_path("{kind}", "{name}"),
    log:
        paths.log("landscape", "gather/{kind}/{name}"),
    benchmark:
        paths.benchmark("gather_landscape_surface", "{kind}/{name}")
    wildcard_constraints:
        kind="|".join(lland.PLANE_KINDS),
        name=LANDSCAPE_NAME,
    params:
        settings=lambda wc: lland.settings_for(config, wc.kind),
    run:
        check = partial(lland.gather_shards, settings=params.settings, kind=wildcards.kind)
        ltables.gather(input, output[0], check, log=log[0])


rule gather_landscape_table:
    """Every surface (or line) of one kind in results/tables/landscape_<kind>.parquet."""
    input:
        lambda wc: lland.kind_files(config, RUNS, get_chosen("landscape"), wc.kind),
    output:
        paths.table("landscape_{kind}"),
    log:
        paths.log("landscape", "gather_{kind}"),
    benchmark:
        paths.benchmark("gather_landscape_table", "{kind}")
    wildcard_constraints:
        kind="|".join([*lland.KINDS, "pca_trajectory"]),
    run:
        ltables.gather(input, output[0], log=log[0])
