# The `baseline` model (oncoflow.baseline): tumor volume and tumor-vs-brain intensity statistics in a
# penalised logistic regression per fold; evaluated like every other model. Off with
# baseline.activate: false, and absent when a subject has no tumor mask (PLAN.baseline_models).


rule extract_baseline_features:
    """Per patient: log tumor volume and first-order statistics of the tumor's intensities in each
    modality as z-scores against the brain (organ) outside the tumor; nothing fitted across patients.
    The tumor mask is the sheet's or the cross-fitted predicted one (segment.feature_mask)."""
    input:
        images=expand(
            f"{RESULTS}/subjects/{{subject}}/brain/{{modality}}.nii.gz", subject=PLAN.subjects, modality=MODALITIES
        ),
        brain_masks=expand(f"{RESULTS}/subjects/{{subject}}/brain/brain_mask.nii.gz", subject=PLAN.subjects),
        tumor_masks=get_feature_tumor_masks,
    output:
        features=f"{RESULTS}/baseline/features.tsv",
    log:
        f"{RESULTS}/logs/extract_baseline_features/extract_baseline_features.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract_baseline_features/extract_baseline_features.tsv"
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        subjects=PLAN.subjects,
        modalities=MODALITIES,
    script:
        "../scripts/extract_baseline_features.py"


rule fit_baseline_model:
    """The baseline on one fold: standardisation and L2-penalised logistic regression (C by inner
    cross-validation) fitted on the fold's training patients only; predictions for every role."""
    input:
        features=f"{RESULTS}/baseline/features.tsv",
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        predictions=f"{RESULTS}/models/baseline/fold{{fold}}/predictions.tsv",
        coefficients=f"{RESULTS}/models/baseline/fold{{fold}}/coefficients.tsv",
    log:
        f"{RESULTS}/logs/fit_baseline_model/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_baseline_model/fold{{fold}}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        seed=PLAN.seed,
        harmonisation=PLAN.harmonisation,
    script:
        "../scripts/fit_baseline_model.py"
