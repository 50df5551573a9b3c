rule crop_tumor:
    """Tumor-centred (crop.region: tumor) or whole-brain crops of every modality, normalised inside
    the brain, cached as arrays."""
    input:
        **per_modality("brain"),
        brain_mask=f"{RESULTS}/subjects/{{subject}}/brain/brain_mask.nii.gz",
        tumor_mask=f"{RESULTS}/subjects/{{subject}}/coreg/tumor_mask.nii.gz",
    output:
        crop=f"{RESULTS}/subjects/{{subject}}/crop/crop.npz",
        report=f"{RESULTS}/subjects/{{subject}}/crop/crop.tsv",
    params:
        crop=get_crop_params(),
        tumor_mask_source=get_tumor_mask,
    log:
        f"{RESULTS}/logs/crop_tumor/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crop_tumor/{{subject}}.tsv"
    group:
        "subject"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/preprocess.yaml"
    script:
        "../scripts/crop_tumor.py"
