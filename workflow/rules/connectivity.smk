# Mode connectivity and a walk with SGD (lossland.pipeline.families.connectivity): a curve
# trained between the final weights of each pair of chosen runs (one job per pair), and
# walks from one chosen run's final weights (one job per batch size, one for gradient
# descent); gathered tables (the figures are drawn by figures.smk).

from lossland.pipeline.families import connectivity as lconn


localrules:
    gather_curves,
    gather_walk,


rule curve_pair:
    """Train a curve between two solutions; the curve and the line on every split; the plane through them."""
    input:
        unpack(lambda wc: lconn.curve_inputs(config, RUNS, get_chosen("curves"), wc.pair)),
    output:
        **{t: lconn.curve_path("{pair}", t) for t in lconn.CURVE_TABLES},
    log:
        paths.log("curve_pair", "{pair}"),
    benchmark:
        paths.benchmark("curve_pair", "{pair}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("connectivity"),
    params:
        p=lambda wc: lconn.curve_params(config, RUNS, get_chosen("curves"), wc.pair),
    script:
        "../scripts/curve_pair.py"


rule sgd_walk:
    """Steps of SGD (or gradient descent) from a chosen run's final weights: every segment's loss, gradient angles."""
    input:
        data=lambda wc: paths.prepared_data(RUNS[lconn.walk_run(config, RUNS, get_chosen("walk"))]["dataset"]),
        weights=lambda wc: lconn.final_weights(RUNS, lconn.walk_run(config, RUNS, get_chosen("walk"))),
    output:
        **{t: lconn.walk_path("{walk}", t) for t in lconn.WALK_TABLES},
    log:
        paths.log("sgd_walk", "{walk}"),
    benchmark:
        paths.benchmark("sgd_walk", "{walk}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("connectivity"),
    params:
        p=lambda wc: lconn.walk_params(config, RUNS, get_chosen("walk"), wc.walk),
    script:
        "../scripts/sgd_walk.py"


rule gather_curves:
    """Every pair's tables in one table each."""
    input:
        **lconn.curve_files(config),
    output:
        **{f"curve_{t}": paths.table(f"curve_{t}") for t in lconn.CURVE_TABLES},
    log:
        paths.log("gather_curves", "curves"),
    benchmark:
        paths.benchmark("gather_curves", "curves")
    run:
        ltables.gather_prefixed(input, output, "curve", lconn.CURVE_TABLES, log[0])


rule gather_walk:
    """Every walk's tables in one table each."""
    input:
        **lconn.walk_files(config),
    output:
        **{f"walk_{t}": paths.table(f"walk_{t}") for t in lconn.WALK_TABLES},
    log:
        paths.log("gather_walk", "walk"),
    benchmark:
        paths.benchmark("gather_walk", "walk")
    run:
        ltables.gather_prefixed(input, output, "walk", lconn.WALK_TABLES, log[0])
