# Label-free pretraining (config `pretrain`). source folds: one checkpoint per (pretrain job, model
# that starts from it, fold), made from the crops of that fold's train + val patients only.
# source cohort: one checkpoint per (pretrain job, model) from another cohort's subjects, which
# every fold starts from. train_model loads its backbone (models[].init: pretrained; train.smk).
from functools import cache

from oncoflow.config import expand_pretrain
from oncoflow.train.folds import make_folds, pretrain_subjects

PRETRAIN_JOBS = expand_pretrain(config, MODELS)
FOLD_PRETRAIN = sorted({p for (p, _), job in PRETRAIN_JOBS.items() if job.params["source"] == "folds"})
COHORT_PRETRAIN = sorted({p for (p, _), job in PRETRAIN_JOBS.items() if job.params["source"] == "cohort"})


@cache
def fold_pretrain_subjects():
    """fold -> the subjects its pretraining may read: the same make_folds call that split_folds
    runs (same sheet, labels and cv settings), so the job's inputs name no test or external
    patient; pretrain_model.py checks them against splits.tsv as well."""
    sheet = SAMPLES[["subject", "cohort", "y"]].reset_index(drop=True)
    cv = config["cv"]
    splits = make_folds(sheet, label="y", folds=cv["folds"], seed=cv["seed"],
                        val_fraction=cv["val_fraction"],
                        external_cohorts=tuple(config["cohort"]["external"]))
    return {fold: pretrain_subjects(splits, fold) for fold in FOLDS}


def get_pretrain_job(wildcards):
    key = (wildcards.pretrain, wildcards.model)
    if key not in PRETRAIN_JOBS:
        users = sorted(m for p, m in PRETRAIN_JOBS if p == wildcards.pretrain)
        raise ValueError(f"no model starts from pretrain job {wildcards.pretrain!r} as "
                         f"{wildcards.model!r} (models that do: {', '.join(users) or 'none'})")
    return PRETRAIN_JOBS[key]


def get_pretrain_crops(wildcards):
    get_pretrain_job(wildcards)
    subjects = fold_pretrain_subjects()[int(wildcards.fold)]
    return [f"{RESULTS}/subjects/{s}/crop/crop.npz" for s in subjects]


def get_cohort_pretrain_crops(wildcards):
    get_pretrain_job(wildcards)
    subjects = PRETRAIN_SAMPLES.loc[PRETRAIN_SAMPLES["pretrain"] == wildcards.pretrain, "subject"]
    return [f"{RESULTS}/subjects/{s}/crop/crop.npz" for s in subjects]


def get_pretrain_params(wildcards):
    job = get_pretrain_job(wildcards)
    return {**job.params, "crop": crop_config(), "seed": config["cv"]["seed"]}


def check_pretrain_weights(wildcards):
    """Stop while the DAG is built when the pretraining's own start weights are missing."""
    path = get_pretrain_job(wildcards).params.get("weights")
    for weights in WEIGHTS:
        if path and weights.path == Path(path):
            weights.check()
    return []


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
    params:
        pretrain=get_pretrain_params,
    wildcard_constraints:
        pretrain=alternation(FOLD_PRETRAIN),
    log:
        f"{RESULTS}/logs/pretrain_model/{{pretrain}}_{{model}}_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_model/{{pretrain}}_{{model}}_fold{{fold}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    conda:
        "../../envs/train.yaml"
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
    params:
        pretrain=get_pretrain_params,
    wildcard_constraints:
        pretrain=alternation(COHORT_PRETRAIN),
    log:
        f"{RESULTS}/logs/pretrain_model_on_cohort/{{pretrain}}_{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_model_on_cohort/{{pretrain}}_{{model}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/pretrain_model_on_cohort.py"
