# Every step writes its folder whatever the config switches say (subjects/<s>/{n4,coreg,brain}), so
# the results layout is the same for brain and non-brain, raw and pre-registered cohorts.


rule correct_bias:
    """N4 bias-field correction of every modality inside its head mask (preprocess.n4.activate:
    false copies the images unchanged)."""
    input:
        **per_modality("raw"),
    output:
        **per_modality("n4"),
    log:
        f"{RESULTS}/logs/correct_bias/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/correct_bias/{{subject}}.tsv"
    group:
        "subject"
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        n4=config["preprocess"]["n4"],
        modalities=input_modalities,
    script:
        "../scripts/correct_bias.py"


rule register_modalities:
    """Rigid/affine mutual-information registration of every modality onto the reference (or, with
    transform none, resampling onto its grid after a same-space check); each modality's transform
    is kept for the tumor mask."""
    input:
        **per_modality("n4"),
    output:
        **per_modality("coreg"),
        **{f"{m}_transform": f"{RESULTS}/subjects/{{subject}}/coreg/{m}_to_reference.mat" for m in MODALITIES},
        report=f"{RESULTS}/subjects/{{subject}}/coreg/registration.tsv",
    log:
        f"{RESULTS}/logs/register_modalities/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/register_modalities/{{subject}}.tsv"
    group:
        "subject"
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        modalities=MODALITIES,
        reference=REFERENCE,
        registration=config["preprocess"]["registration"],
    script:
        "../scripts/register_modalities.py"


rule transform_tumor_mask:
    """The sample sheet's tumor mask, checked against its own modality's grid, onto the reference
    grid with that modality's transform (a subject without a mask stops here, naming it)."""
    input:
        tumor_mask=get_tumor_mask,
        space_image=get_tumor_mask_space_image,
        transform=get_tumor_mask_transform,
        reference=f"{RESULTS}/subjects/{{subject}}/coreg/{REFERENCE}.nii.gz",
    output:
        tumor_mask=f"{RESULTS}/subjects/{{subject}}/coreg/tumor_mask.nii.gz",
    log:
        f"{RESULTS}/logs/transform_tumor_mask/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/transform_tumor_mask/{{subject}}.tsv"
    group:
        "subject"
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        space=get_tumor_mask_space,
    script:
        "../scripts/transform_tumor_mask.py"


rule extract_brain:
    """Brain mask on the reference modality, applied to every co-registered modality (backend none:
    the head/foreground mask), and the second opinion's mask of the same image for QC (HD-BET and
    deepbet run from their wheels' bundled weights: nothing is downloaded; CUDA when the job has a GPU)."""
    input:
        **per_modality("coreg"),
    output:
        **per_modality("brain"),
        mask=f"{RESULTS}/subjects/{{subject}}/brain/brain_mask.nii.gz",
        second_mask=f"{RESULTS}/subjects/{{subject}}/brain/second_opinion_mask.nii.gz",
        report=f"{RESULTS}/subjects/{{subject}}/brain/brain.tsv",
    log:
        f"{RESULTS}/logs/extract_brain/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract_brain/{{subject}}.tsv"
    group:
        "subject"
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=20,
    params:
        reference=REFERENCE,
        brain=brain_extraction_params(config),
        modalities=input_modalities,
    script:
        "../scripts/extract_brain.py"
