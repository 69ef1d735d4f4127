# Loss landscapes of the chosen runs of one study (im2016 Fig 2, 3, 5, 6, 7 right
# column, 10, Table 1; Li et al. random and PCA planes). Lines are one job each;
# planes are split into shards of whole grid rows (one job each), gathered into one
# table per surface, then into one table per kind under results/tables/.

from lossland import landscape_plan as lplan

LANDSCAPE_KINDS = list(lplan.KINDS)
LANDSCAPE_TABLES = LANDSCAPE_KINDS + ["pca_trajectory"]
LANDSCAPE_FIGURES = {
    "fig2_init_final": ["init_final"],
    "fig3_bilinear": ["bilinear"],
    "fig5_interpolation": ["init_final", "final_final"],
    "fig6_distance": ["distance"],
    "fig10_beyond_final": ["init_final"],
    "table1_optimizer_grid": ["barycentric", "final_final"],
    "fig7_switching_interpolation": ["switching"],
    "random_plane": ["random_plane"],
    "pca_plane": ["pca", "pca_trajectory"],
}


def landscape_kinds():
    """The kinds the config asks for (switching only with a switch study)."""
    cfg = config["landscape"]
    kinds = list(cfg.get("kinds") or lplan.CONFIG_KINDS)
    if (cfg.get("switching") or {}).get("enabled") and config.get("switch_study"):
        kinds.append("switching")
    return kinds


def landscape_figures():
    kinds = set(landscape_kinds())
    return [f for f, need in LANDSCAPE_FIGURES.items() if set(need) - {"pca_trajectory"} <= kinds]


def landscape_plan():
    cfg = config["landscape"]
    return lplan.plan(config, RUNS, chosen_run_names(cfg["study"]))


def landscape_job(kind, name):
    return landscape_plan()[kind][name]


def weight_file(ref):
    """The file (init or final weights) or folder (saved checkpoints) holding a run's weights at an epoch."""
    spec = RUNS[ref["run"]]
    if ref["epoch"] == 0:
        return init_path(spec)
    return checkpoint_input(ref["run"], ref["epoch"])


def _weight_inputs(job, trajectory=False):
    refs = lplan.weight_refs(job, trajectory)
    inputs = {"data": prepared_data(RUNS[refs[0][1]["run"]]["dataset"])}
    inputs.update({f"w{i}": weight_file(r) for i, (_, r) in enumerate(refs)})
    return inputs


def landscape_inputs(wildcards):
    inputs = _weight_inputs(landscape_job(wildcards.kind, wildcards.name))
    if wildcards.kind == "pca":
        inputs["directions"] = f"{RESULTS}/landscape/pca_directions/{wildcards.name}.safetensors"
        inputs["trajectory"] = f"{RESULTS}/landscape/pca_trajectory/{wildcards.name}.parquet"
    return inputs


def pca_direction_inputs(wildcards):
    return _weight_inputs(landscape_job("pca", wildcards.name), trajectory=True)


def landscape_params(wildcards):
    return {"kind": wildcards.kind, "job": landscape_job(wildcards.kind, wildcards.name),
            "settings": lplan.settings_for(config, wildcards.kind)}


def landscape_shard_files(wildcards):
    n = landscape_job(wildcards.kind, wildcards.name)["shards"]
    return [f"{RESULTS}/landscape/shards/{wildcards.kind}/{wildcards.name}/shard{i}-of{n}.parquet" for i in range(n)]


def landscape_surface_files(wildcards):
    kind = "pca" if wildcards.kind == "pca_trajectory" else wildcards.kind
    names = sorted(landscape_plan()[kind])
    if wildcards.kind == "pca_trajectory":
        return [f"{RESULTS}/landscape/pca_trajectory/{n}.parquet" for n in names]
    return [f"{RESULTS}/landscape/{kind}/{n}.parquet" for n in names]


def landscape_targets():
    kinds = landscape_kinds()
    tables = [k for k in LANDSCAPE_TABLES if k in kinds or (k == "pca_trajectory" and "pca" in kinds)]
    return ([f"{RESULTS}/tables/landscape_{k}.parquet" for k in tables]
            + [f"{RESULTS}/figures/{f}.png" for f in landscape_figures()])


def gather_landscape(parts, out, settings=None, kind=None):
    """Shards -> one surface (checked to cover the grid once), or surfaces -> one table.
    Runs inside Snakemake (a `run:` block): no interpreter start-up per gathered table."""
    import pandas as pd
    from lossland import io as lio

    frames = [lio.read_parquet(p) for p in parts]
    table = lplan.gather_shards(frames, settings, kind) if kind else pd.concat(frames, ignore_index=True)
    lio.write_parquet(table, out, lio.provenance({"parts": parts}))


localrules: gather_landscape_surface, gather_landscape_table


rule landscape_line:
    """One 1-D line (init->final, final->final, distance path, switching lines) on every split."""
    input:
        unpack(landscape_inputs),
    output:
        f"{RESULTS}/landscape/{{kind}}/{{name}}.parquet",
    wildcard_constraints:
        kind="|".join(lplan.LINE_KINDS),
        name="[A-Za-z0-9][A-Za-z0-9._-]*",
    params:
        p=landscape_params,
        shard=0,
        shards=1,
    log:
        f"{RESULTS}/logs/landscape/{{kind}}/{{name}}.log",
    threads: THREADS
    resources:
        **compute_resources(),
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/landscape_job.py"


rule landscape_pca_directions:
    """Top-2 PCA directions of a run's saved checkpoints and the trajectory's coordinates on them."""
    input:
        unpack(pca_direction_inputs),
    output:
        directions=f"{RESULTS}/landscape/pca_directions/{{name}}.safetensors",
        trajectory=f"{RESULTS}/landscape/pca_trajectory/{{name}}.parquet",
    params:
        p=lambda wc: {"kind": "pca", "job": landscape_job("pca", wc.name)},  # not the grid: directions do not depend on it
    log:
        f"{RESULTS}/logs/landscape/pca_directions/{{name}}.log",
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/landscape_pca_directions.py"


rule landscape_shard:
    """One shard (whole grid rows) of a 2-D plane on every split."""
    input:
        unpack(landscape_inputs),
    output:
        f"{RESULTS}/landscape/shards/{{kind}}/{{name}}/shard{{shard}}-of{{shards}}.parquet",
    wildcard_constraints:
        kind="|".join(lplan.PLANE_KINDS),
        name="[A-Za-z0-9][A-Za-z0-9._-]*",
        shard=r"\d+",
        shards=r"\d+",
    params:
        p=landscape_params,
        shard=lambda wc: int(wc.shard),
        shards=lambda wc: int(wc.shards),
    log:
        f"{RESULTS}/logs/landscape/shards/{{kind}}/{{name}}/shard{{shard}}-of{{shards}}.log",
    threads: THREADS
    resources:
        **compute_resources(),
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/landscape_job.py"


rule gather_landscape_surface:
    """A plane's shards in one table (checked to cover the grid exactly once)."""
    input:
        landscape_shard_files,
    output:
        f"{RESULTS}/landscape/{{kind}}/{{name}}.parquet",
    wildcard_constraints:
        kind="|".join(lplan.PLANE_KINDS),
        name="[A-Za-z0-9][A-Za-z0-9._-]*",
    params:
        settings=lambda wc: lplan.settings_for(config, wc.kind),
    log:
        f"{RESULTS}/logs/landscape/gather/{{kind}}/{{name}}.log",
    run:
        gather_landscape(list(input), output[0], params.settings, wildcards.kind)


rule gather_landscape_table:
    """Every surface (or line) of one kind in results/tables/landscape_<kind>.parquet."""
    input:
        landscape_surface_files,
    output:
        f"{RESULTS}/tables/landscape_{{kind}}.parquet",
    wildcard_constraints:
        kind="|".join(LANDSCAPE_TABLES),
    log:
        f"{RESULTS}/logs/landscape/gather_{{kind}}.log",
    run:
        gather_landscape(list(input), output[0])


for _figure, _tables in LANDSCAPE_FIGURES.items():

    rule:
        name:
            f"plot_{_figure}"
        input:
            [f"{RESULTS}/tables/landscape_{t}.parquet" for t in _tables],
        output:
            report(f"{RESULTS}/figures/{_figure}.png", caption=f"../report/{_figure}.rst",
                   category="Loss landscape"),
        params:
            figure=_figure,
            tables=_tables,
        log:
            f"{RESULTS}/logs/plot_{_figure}.log",
        conda:
            "../envs/lossland.yaml"
        script:
            "../scripts/plot_landscape.py"
