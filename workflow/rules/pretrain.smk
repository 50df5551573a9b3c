# Label-free pretraining (config `pretrain`). source folds: one checkpoint per (pretrain job, model
# that starts from it, fold), made from the crops of that fold's train + val patients only.
# source cohort: one checkpoint per (pretrain job, model) from another cohort's subjects, which
# every fold starts from. train_model loads its backbone (models[].init: pretrained; train.smk).


rule pretrain_model:
    """Label-free pretraining of one model's backbone on one fold's train + val patients (tumor
    segmentation or tumor-slice detection from the crops); never a test or external patient."""
    input:
        crops=get_pretrain_crops,
        splits=f"{RESULTS}/folds/splits.tsv",
        weights=check_pretrain_weights,
    output:
        checkpoint=f"{RESULTS}/pretrain/{{pretrain}}/{{model}}/fold{{fold}}/checkpoint.pt",
        history=f"{RESULTS}/pretrain/{{pretrain}}/{{model}}/fold{{fold}}/history.tsv",
    log:
        f"{RESULTS}/logs/pretrain_model/{{pretrain}}_{{model}}_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_model/{{pretrain}}_{{model}}_fold{{fold}}.tsv"
    wildcard_constraints:
        pretrain=alternation(PLAN.pretrain_names("folds")),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    params:
        pretrain=get_pretrain_params,
        subjects=pretrain_input_subjects,
    script:
        "../scripts/pretrain_model.py"


rule pretrain_model_on_cohort:
    """Label-free pretraining of one model's backbone on another cohort's subjects (pretrain[].
    source: cohort, e.g. glioblastoma or normal heads); one checkpoint that every fold starts from."""
    input:
        crops=get_cohort_pretrain_crops,
        weights=check_pretrain_weights,
    output:
        checkpoint=f"{RESULTS}/pretrain/{{pretrain}}/{{model}}/cohort/checkpoint.pt",
        history=f"{RESULTS}/pretrain/{{pretrain}}/{{model}}/cohort/history.tsv",
    log:
        f"{RESULTS}/logs/pretrain_model_on_cohort/{{pretrain}}_{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_model_on_cohort/{{pretrain}}_{{model}}.tsv"
    wildcard_constraints:
        pretrain=alternation(PLAN.pretrain_names("cohort")),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=1,
    params:
        pretrain=get_pretrain_params,
        subjects=cohort_pretrain_input_subjects,
    script:
        "../scripts/pretrain_model_on_cohort.py"
