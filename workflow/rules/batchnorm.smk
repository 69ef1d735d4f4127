# im2016 section 4.4, Table 2 and Fig 8 (lossland.pipeline.families.batchnorm): init->final and
# final->final lines of NIN and VGG with and without BatchNorm and of the LSTM on Penn Treebank.
# The runs are trained by train.smk; here: one job per architecture, model and init seed with
# all of that init's lines, and the gathered metrics, lines and summary (figures: figures.smk).

from lossland.models import has_batch_norm
from lossland.pipeline.families import batchnorm as lbn


localrules:
    gather_bn_study,


rule bn_study_lines:
    """Every init->final and final->final line of one model and init seed, on every split."""
    input:
        unpack(lambda wc: lbn.line_inputs(config, wc.architecture, wc.model, int(wc.seed))),
    output:
        lbn.lines_path("{architecture}", "{model}", "{seed}"),
    log:
        paths.log("bn_study_lines", "{architecture}/{model}_init{seed}"),
    benchmark:
        paths.benchmark("bn_study_lines", "{architecture}/{model}_init{seed}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("landscape"),
    params:
        p=lambda wc: lbn.line_params(config, wc.architecture, wc.model, int(wc.seed)),
    script:
        "../scripts/bn_study_lines.py"


rule gather_bn_study:
    """The runs' per-epoch metrics, every line and the per-model summary (loss spread, local maxima)."""
    input:
        unpack(lambda wc: lbn.gather_inputs(config)),
    output:
        **{t: paths.table(t) for t in lbn.TABLES},
    log:
        paths.log("gather_bn_study", "bn_study"),
    benchmark:
        paths.benchmark("gather_bn_study", "bn_study")
    params:
        architecture_of=lambda wc: lbn.run_architectures(config),
        batch_norm_of=lambda wc: {m: has_batch_norm(config["models"][m]) for m in config["models"]},
        rel_tol=lambda wc: config[lbn.SECTION]["bump_tolerance"],
    run:
        lbn.gather_tables(
            input,
            output,
            params.architecture_of,
            params.batch_norm_of,
            params.rel_tol,
            log=log[0],
        )
