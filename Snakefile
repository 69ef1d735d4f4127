# lossland: loss-landscape studies, end to end. See README.md.
# This file only includes the rules; the logic lives in workflow/rules/*.smk,
# the scripts in workflow/scripts/ and the maths in src/lossland/.

# config.yaml is the default study; `--configfile config/paper.yaml` replaces it
# (presets are complete configs, not overlays), `--config key=value` amends it.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/optimizers.smk"
include: "workflow/rules/hessian.smk"
include: "workflow/rules/landscape.smk"


rule all:
    input:
        all_targets(),
    default_target: True
