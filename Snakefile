# oncoflow: clinical MRI exams -> tumor-status predictions -> paper-ready evaluation tables.
# Stages (one rule file each, one package folder each): ingest -> preprocess -> crop -> train ->
# fuse -> evaluate. Configure in config/config.yaml (documented in config/README.md).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/crop.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/fuse.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        get_final_output(),
    default_target: True
