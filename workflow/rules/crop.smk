rule crop_tumor:
    """Tumor-centred (crop.region: tumor) or whole-brain crops of every modality, normalised inside
    the brain, cached as arrays (from atlas/ with preprocess.atlas.activate); the tumor mask is the
    sheet's or the cross-fitted predicted one (segment.crop_mask), which is not cropped when empty
    or implausible (segment.min_predicted_ml, max_predicted_ml, min_inside_brain): crop.npz and
    crop.tsv then say why, and the subject is left out of the CNN models (participant flow)."""
    input:
        **per_modality(CROP_STAGE),
        brain_mask=f"{RESULTS}/subjects/{{subject}}/{CROP_STAGE}/brain_mask.nii.gz",
        tumor_mask=get_crop_tumor_mask,
    output:
        crop=f"{RESULTS}/subjects/{{subject}}/crop/crop.npz",
        report=f"{RESULTS}/subjects/{{subject}}/crop/crop.tsv",
    log:
        f"{RESULTS}/logs/crop_tumor/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crop_tumor/{{subject}}.tsv"
    wildcard_constraints:
        subject=alternation(PLAN.tumor_crop_subjects),
    group:
        SEGMENTED_CROP_GROUP
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        crop=PLAN.crop_params,
        tumor_mask_source=get_crop_tumor_mask_source,
        predicted_mask_bounds=get_crop_predicted_mask_bounds,
        modalities=input_modalities,
    script:
        "../scripts/crop_tumor.py"


rule crop_brain:
    """Whole-brain crops of a pretraining-cohort subject without tumor mask (e.g. a normal head,
    pretrain[].task: rotation): the same arrays as crop_tumor, with an all-zero tumor mask."""
    input:
        **per_modality(CROP_STAGE),
        brain_mask=f"{RESULTS}/subjects/{{subject}}/{CROP_STAGE}/brain_mask.nii.gz",
    output:
        crop=f"{RESULTS}/subjects/{{subject}}/crop/crop.npz",
        report=f"{RESULTS}/subjects/{{subject}}/crop/crop.tsv",
    log:
        f"{RESULTS}/logs/crop_brain/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crop_brain/{{subject}}.tsv"
    wildcard_constraints:
        subject=alternation(PLAN.maskless_subjects),
    group:
        "subject"
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        crop={**PLAN.crop_params, "region": "brain"},
        tumor_mask_source="",
        modalities=input_modalities,
    script:
        "../scripts/crop_tumor.py"
