rule correct_bias:
    """N4 bias-field correction of every modality inside its head mask."""
    input:
        **per_modality("raw"),
    output:
        **per_modality("n4"),
    params:
        n4=config["preprocess"]["n4"],
    log:
        f"{RESULTS}/logs/correct_bias/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/correct_bias/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/preprocess.yaml"
    script:
        "../scripts/correct_bias.py"


rule register_modalities:
    """Rigid/affine mutual-information registration of every modality onto the reference; the
    tumor mask follows from its own modality's space."""
    input:
        **per_modality("n4"),
        tumor_mask=get_tumor_mask,
    output:
        **per_modality("coreg"),
        tumor_mask=f"{RESULTS}/subjects/{{subject}}/coreg/tumor_mask.nii.gz",
        report=f"{RESULTS}/subjects/{{subject}}/coreg/registration.tsv",
    params:
        reference=REFERENCE,
        tumor_mask_space=get_tumor_mask_space,
        registration=config["preprocess"]["registration"],
    log:
        f"{RESULTS}/logs/register_modalities/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/register_modalities/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    conda:
        "../../envs/preprocess.yaml"
    script:
        "../scripts/register_modalities.py"


rule extract_brain:
    """Brain mask on the reference modality, applied to every co-registered modality."""
    input:
        **per_modality("coreg"),
    output:
        **per_modality("brain"),
        mask=f"{RESULTS}/subjects/{{subject}}/brain/brain_mask.nii.gz",
        report=f"{RESULTS}/subjects/{{subject}}/brain/brain.tsv",
    params:
        reference=REFERENCE,
        backend=config["preprocess"]["brain_extraction"]["backend"],
        hdbet_weights=config["preprocess"]["brain_extraction"]["hdbet_weights"],
    log:
        f"{RESULTS}/logs/extract_brain/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract_brain/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=20,
    conda:
        "../../envs/preprocess.yaml"
    script:
        "../scripts/extract_brain.py"
