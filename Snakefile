# oncoflow: clinical MRI exams -> tumor-status predictions -> paper-ready evaluation tables.
# Stages (one rule file each, one package folder each): ingest -> preprocess -> crop -> train ->
# fuse -> evaluate; radiomics studies branch off after preprocess (superres -> radiomics).
# Configure in config/config.yaml (documented in config/README.md).

from snakemake.utils import min_version

min_version("9.0")


# The demo config, unless a config is given with --configfile: that one then stands alone (Snakemake
# would otherwise merge it into this one, keeping e.g. the demo's modalities next to the study's).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/atlas.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/crop.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/explain.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/fuse.smk"
include: "workflow/rules/superres.smk"
include: "workflow/rules/interpolate.smk"
include: "workflow/rules/radiomics.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/sites.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/reporting.smk"
include: "workflow/rules/model_card.smk"
include: "workflow/rules/archive.smk"
include: "workflow/rules/bundle.smk"
include: "workflow/rules/predict.smk"


onerror:
    # every failed job with its subject and reason (from its log), after Snakemake's own summary;
    # the cohort QC table with the failed subjects' errors (summarize_qc cannot run without their rows)
    import sys
    from oncoflow.failed_jobs import format_failures, write_qc_after_failure

    summary = [format_failures(log), write_qc_after_failure(log, RESULTS, PLAN.subjects, MODALITIES)]
    print(*filter(None, summary), sep="\n", file=sys.stderr)


rule all:
    default_target: True
    input:
        get_final_output(),


rule download_models:
    """On a machine with internet (a login node): fetch the pretrained weights this config reads
    and lacks (nothing for models trained from scratch; HD-BET's and deepbet's weights ship in
    their wheels). Compute nodes only read them."""
    input:
        get_weight_files(),
