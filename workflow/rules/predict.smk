# `oncoflow predict BUNDLE SHEET`: a bundle's models applied to a new sample sheet. The new
# subjects run through the same front half (ingest, preprocess, QC, crop, baseline features) into
# results/<study>/predict/<name>/ with the bundle's settings; nothing is trained or fitted.


rule predict_new_subjects:
    """Each bundled model's fold models applied to every new subject: the ensemble's mean
    probability, its SD over folds, the study's threshold and class, and the recalibrated risk;
    QC-flagged subjects are listed as such, unscored."""
    input:
        unpack(get_predict_inputs),
    output:
        predictions=f"{RESULTS}/predictions.tsv",
        per_fold=f"{RESULTS}/predictions_per_fold.tsv",
    log:
        f"{RESULTS}/logs/predict_new_subjects/predict_new_subjects.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict_new_subjects/predict_new_subjects.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        predict=get_predict_params,
    script:
        "../scripts/predict_new_subjects.py"


rule evaluate_new_subjects:
    """With labels: per model and cohort of the new sheet, AUC with its CI on the scored subjects,
    sensitivity and specificity at the study's threshold, beside the study's cross-validated AUC."""
    input:
        predictions=f"{RESULTS}/predictions.tsv",
        cv_metrics=get_bundle_metrics,
    output:
        metrics=f"{RESULTS}/metrics.tsv",
        metrics_md=f"{RESULTS}/metrics.md",
    log:
        f"{RESULTS}/logs/evaluate_new_subjects/evaluate_new_subjects.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_new_subjects/evaluate_new_subjects.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        evaluate=PLAN.evaluate_params,
    script:
        "../scripts/evaluate_new_subjects.py"
