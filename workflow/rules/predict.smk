# `oncoflow predict BUNDLE SHEET`: a bundle's models applied to a new sample sheet. The new
# subjects run through the same front half (ingest, preprocess, QC, crop, baseline features) into
# results/<study>/predict/<name>/ with the bundle's settings; nothing is trained or fitted. The CNN
# models' explanation maps of the scored subjects go to maps/ (rule new_subject_maps), a co-trained
# model's own tumor masks to tumor_masks/ (rule new_subject_tumor_masks).


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


rule segment_new_subject:
    """A new subject without a tumor mask, segmented by every fold's segmenter in the bundle: the
    masks on the reference grid, each plausible one cropped as crop_tumor crops (fold k's model
    scores the crop from fold k's mask), and per fold the volume, share inside the brain and
    verdict; an implausible mask is not cropped (the subject is not scored)."""
    input:
        **per_modality(CROP_STAGE),
        brain_mask=f"{RESULTS}/subjects/{{subject}}/{CROP_STAGE}/brain_mask.nii.gz",
        segmenters=get_bundle_segmenters,
    output:
        masks=PLAN.new_subject_masks("{subject}"),
        crops=directory(f"{RESULTS}/subjects/{{subject}}/predicted_mask/crops"),
        table=f"{RESULTS}/subjects/{{subject}}/predicted_mask.tsv",
    log:
        f"{RESULTS}/logs/segment_new_subject/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segment_new_subject/{{subject}}.tsv"
    wildcard_constraints:
        subject=alternation(PLAN.predicted_mask_subjects),
    group:
        "subject"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        folds=PLAN.predict_segmenter_folds,
        crop=PLAN.crop_params,
        bounds=PLAN.segment.plausibility(),
        modalities=input_modalities,
    script:
        "../scripts/segment_new_subject.py"


rule new_subject_maps:
    """Each bundled CNN model's explanation maps of every subject predict scored: the mean of its
    fold models' maps (explain.methods, each fold model explaining the class predict reports), as
    NIfTI on the crop grid and on the subject's reference grid and a PNG overlay; a subject scored
    from predicted masks gets each fold's map on that fold's crop and their mean on the reference
    grid. maps.tsv lists every subject, model and method (unscored ones with predict's reason) and
    the study's randomisation verdict from the bundle's model card."""
    input:
        unpack(get_new_subject_map_inputs),
    output:
        maps=directory(f"{RESULTS}/maps"),
        table=f"{RESULTS}/maps.tsv",
    log:
        f"{RESULTS}/logs/new_subject_maps/new_subject_maps.log",
    benchmark:
        f"{RESULTS}/benchmarks/new_subject_maps/new_subject_maps.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        maps=get_new_subject_map_params,
    script:
        "../scripts/new_subject_maps.py"


rule new_subject_tumor_masks:
    """Each co-trained bundled CNN model's own tumor mask of every subject predict scored: the mean
    over its fold models of the segmentation head's tumor probability, thresholded at 0.5, as
    NIfTI on the crop grid and on the subject's reference grid (the mean probability resampled,
    then thresholded); tumor_masks.tsv lists every subject and model (unscored ones with predict's
    reason) and each mask's volume."""
    input:
        unpack(get_new_subject_map_inputs),
    output:
        masks=directory(f"{RESULTS}/tumor_masks"),
        table=f"{RESULTS}/tumor_masks.tsv",
    log:
        f"{RESULTS}/logs/new_subject_tumor_masks/new_subject_tumor_masks.log",
    benchmark:
        f"{RESULTS}/benchmarks/new_subject_tumor_masks/new_subject_tumor_masks.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        masks=get_new_subject_mask_params,
    script:
        "../scripts/new_subject_tumor_masks.py"
