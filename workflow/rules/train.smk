rule split_folds:
    """Stratified, seeded, patient-level folds with an inner validation split; external cohort
    subjects are never trained on."""
    input:
        samples=config["cohort"]["samples"],
        cv_check=check_cv_folds,
    output:
        splits=f"{RESULTS}/folds/splits.tsv",
    params:
        cv=config["cv"],
        label=config["study"]["label"],
        positive=config["study"]["positive"],
        external=config["cohort"]["external"],
    log:
        f"{RESULTS}/logs/split_folds/split_folds.log",
    benchmark:
        f"{RESULTS}/benchmarks/split_folds/split_folds.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/split_folds.py"


def get_pretrained_checkpoint(wildcards):
    """init: pretrained: the fold's own pretrain_model checkpoint, or the one made on another
    cohort (pretrain_model_on_cohort; pretrain.smk); else nothing."""
    params = MODELS[wildcards.model].params
    if params.get("init") != "pretrained":
        return []
    job = PRETRAIN_JOBS[(params["pretrained"], wildcards.model)]
    where = "cohort" if job.params["source"] == "cohort" else f"fold{wildcards.fold}"
    return [f"{RESULTS}/pretrain/{params['pretrained']}/{wildcards.model}/{where}/checkpoint.pt"]


rule train_model:
    """One CNN on one fold: trained on the fold's training patients, best epoch by inner-validation
    AUC, patient-level predictions for every role. Optionally starts from the fold's pretrained
    backbone and co-trains a tumor-segmentation head."""
    input:
        crops=get_model_crops,
        splits=f"{RESULTS}/folds/splits.tsv",
        weights=check_model_weights,
        pretrained=get_pretrained_checkpoint,
    output:
        checkpoint=f"{RESULTS}/models/{{model}}/fold{{fold}}/checkpoint.pt",
        history=f"{RESULTS}/models/{{model}}/fold{{fold}}/history.tsv",
        predictions=f"{RESULTS}/models/{{model}}/fold{{fold}}/predictions.tsv",
    params:
        model=get_model_params,
    log:
        f"{RESULTS}/logs/train_model/{{model}}_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_model/{{model}}_fold{{fold}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/train_model.py"
