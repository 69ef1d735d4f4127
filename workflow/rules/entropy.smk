# Energy-entropy competition (zhang2018; lossland.pipeline.families.entropy): one job per
# dynamics (an ensemble of nets trained, descended to the tolerance, every solution's exact
# Hessian), one job per init kind of the deep linear students, one job of the invariant's
# drift; gathered tables (the figures are drawn by figures.smk).

from lossland.pipeline.families import entropy as lentropy


localrules:
    gather_entropy,
    gather_deep_linear,


rule entropy_dynamics:
    """SGD, Langevin or gradient descent on an ensemble, then descent to the tolerance; entropy at every solution."""
    input:
        data=lambda wc: paths.prepared_data(config["entropy"]["dataset"]),
    output:
        **{t: lentropy.dynamics_path("{dynamics}", t) for t in lentropy.DYNAMICS_TABLES},
    log:
        paths.log("entropy_dynamics", "{dynamics}"),
    benchmark:
        paths.benchmark("entropy_dynamics", "{dynamics}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("entropy"),
    params:
        p=lambda wc: lentropy.dynamics_params(config, wc.dynamics),
    script:
        "../scripts/entropy_dynamics.py"


rule deep_linear_students:
    """Deep linear students of a noisy teacher trained by SGD from one kind of init; entropy and generalisation."""
    output:
        **{t: lentropy.student_path("{init}", t) for t in lentropy.STUDENT_TABLES},
    log:
        paths.log("deep_linear_students", "{init}"),
    benchmark:
        paths.benchmark("deep_linear_students", "{init}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("entropy", compute=False),
    params:
        p=lambda wc: lentropy.student_params(config, wc.init),
    script:
        "../scripts/deep_linear_students.py"


rule deep_linear_drift:
    """The drift of W1 W1^T - W2^T W2 under full-batch gradient descent and SGD at several learning rates."""
    output:
        drift=lentropy.drift_path(),
    log:
        paths.log("deep_linear_drift", "drift"),
    benchmark:
        paths.benchmark("deep_linear_drift", "drift")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("entropy", compute=False),
    params:
        p=lambda wc: lentropy.drift_params(config),
    script:
        "../scripts/deep_linear_drift.py"


rule gather_entropy:
    """Every dynamics' tables in one table each."""
    input:
        **lentropy.dynamics_files(config),
    output:
        **{f"entropy_{t}": paths.table(f"entropy_{t}") for t in lentropy.DYNAMICS_TABLES},
    log:
        paths.log("gather_entropy", "entropy"),
    benchmark:
        paths.benchmark("gather_entropy", "entropy")
    run:
        ltables.gather_prefixed(input, output, "entropy", lentropy.DYNAMICS_TABLES, log[0])


rule gather_deep_linear:
    """Both inits' tables and the drift, one table each."""
    input:
        **lentropy.student_files(config),
    output:
        **{f"deep_linear_{t}": paths.table(f"deep_linear_{t}") for t in (*lentropy.STUDENT_TABLES, "drift")},
    log:
        paths.log("gather_deep_linear", "deep_linear"),
    benchmark:
        paths.benchmark("gather_deep_linear", "deep_linear")
    run:
        ltables.gather_prefixed(input, output, "deep_linear", (*lentropy.STUDENT_TABLES, "drift"), log[0])
