# 3D super-resolution for the radiomics variant `sr` (config `superres`): a small residual GAN
# trained label-free on the cohort's own co-registered images (or a local checkpoint), its quality
# against interpolation on held-out subjects, and every subject's image and tumor mask at x2.
from oncoflow.superres.degrade import split_subjects

SUPERRES = config["superres"]
SR_MODALITY = config["radiomics"]["modality"] or REFERENCE
_internal = SAMPLES.loc[~SAMPLES["cohort"].isin(config["cohort"]["external"]), "subject"].tolist()
SR_TRAIN, SR_HELDOUT = (
    split_subjects(_internal, heldout_fraction=SUPERRES["heldout_fraction"],
                   max_train=SUPERRES["max_train_subjects"], seed=SUPERRES["seed"])
    if "sr" in RADIOMICS_VARIANTS else ([], [])
)


def get_superres_training_images(wildcards):
    """The training subjects' images; none when a local checkpoint is loaded instead."""
    if SUPERRES["checkpoint"]:
        return []
    return expand(f"{RESULTS}/subjects/{{subject}}/coreg/{SR_MODALITY}.nii.gz", subject=SR_TRAIN)


rule train_superres:
    """Train the x2 generator (with its patch discriminator) on the training subset, every other
    slice dropped and restored; or load superres.checkpoint. Never sees the held-out subjects."""
    input:
        images=get_superres_training_images,
    output:
        generator=f"{RESULTS}/superres/generator.pt",
        history=f"{RESULTS}/superres/history.tsv",
        subjects=f"{RESULTS}/superres/subjects.tsv",
    params:
        superres=SUPERRES,
        train=SR_TRAIN,
        heldout=SR_HELDOUT,
    log:
        f"{RESULTS}/logs/train_superres/train_superres.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_superres/train_superres.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/superres.yaml"
    script:
        "../scripts/train_superres.py"


rule evaluate_superres:
    """PSNR and SSIM of the generator vs. linear and cubic B-spline interpolation on the held-out
    subjects' true dropped slices."""
    input:
        generator=f"{RESULTS}/superres/generator.pt",
        images=expand(f"{RESULTS}/subjects/{{subject}}/coreg/{SR_MODALITY}.nii.gz", subject=SR_HELDOUT),
    output:
        quality=report(f"{RESULTS}/superres/quality.tsv", caption="../report/superres_quality.rst",
                       category="Super-resolution", labels={"table": "PSNR / SSIM on held-out subjects"}),
        quality_md=f"{RESULTS}/superres/quality.md",
    params:
        axes=SUPERRES["axes"],
        subjects=SR_HELDOUT,
    log:
        f"{RESULTS}/logs/evaluate_superres/evaluate_superres.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_superres/evaluate_superres.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/superres.yaml"
    script:
        "../scripts/evaluate_superres.py"


rule apply_superres:
    """The subject's radiomics image at x2 along superres.axes (generator) and its tumor mask on
    the same grid (nearest neighbour)."""
    input:
        generator=f"{RESULTS}/superres/generator.pt",
        image=f"{RESULTS}/subjects/{{subject}}/coreg/{SR_MODALITY}.nii.gz",
        tumor_mask=f"{RESULTS}/subjects/{{subject}}/coreg/tumor_mask.nii.gz",
    output:
        image=f"{RESULTS}/subjects/{{subject}}/superres/{SR_MODALITY}.nii.gz",
        tumor_mask=f"{RESULTS}/subjects/{{subject}}/superres/tumor_mask.nii.gz",
    params:
        axes=SUPERRES["axes"],
    log:
        f"{RESULTS}/logs/apply_superres/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/apply_superres/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    conda:
        "../../envs/superres.yaml"
    script:
        "../scripts/apply_superres.py"
