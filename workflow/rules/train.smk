rule split_folds:
    """Stratified, seeded, patient-level folds (optionally grouped by site or leaving one site
    out) with an inner validation split; external cohort subjects are never trained on."""
    input:
        samples=config["cohort"]["samples"],
        cv_check=check_cv_folds,
    output:
        splits=f"{RESULTS}/folds/splits.tsv",
    log:
        f"{RESULTS}/logs/split_folds/split_folds.log",
    benchmark:
        f"{RESULTS}/benchmarks/split_folds/split_folds.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        cv=PLAN.split_params,
        label=config["study"]["label"],
        positive=config["study"]["positive"],
        external=config["cohort"]["external"],
    script:
        "../scripts/split_folds.py"


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
    log:
        f"{RESULTS}/logs/train_model/{{model}}_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_model/{{model}}_fold{{fold}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    params:
        model=get_model_params,
        subjects=input_subjects,
    script:
        "../scripts/train_model.py"


rule tabulate_selection:
    """The epoch every CNN fold model kept (from its history.tsv), with the size of the
    validation set that chose it and whether that set could choose (tables/selection.tsv)."""
    input:
        histories=get_histories,
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        tsv=f"{RESULTS}/tables/selection.tsv",
    log:
        f"{RESULTS}/logs/tabulate_selection/tabulate_selection.log",
    benchmark:
        f"{RESULTS}/benchmarks/tabulate_selection/tabulate_selection.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        model_folds=PLAN.history_keys,
        train=config["train"],
        epochs=PLAN.model_epochs,
    script:
        "../scripts/tabulate_selection.py"
