# lossland: loss-landscape studies, end to end. See README.md and docs/architecture.md.
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


# one rules file per family of the registry (lossland.pipeline.families), in its order
for _family in FAMILIES:

    include: f"workflow/rules/{_family.NAME}.smk"


include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        TARGETS,
