# 3D super-resolution for the radiomics variant `sr` (config `superres`): a small residual GAN
# trained label-free on the cohort's own co-registered images (or a local checkpoint), its quality
# against interpolation on held-out subjects, and every subject's image and tumor mask at x2.


rule train_superres:
    """Train the x2 generator (with its patch discriminator) on the training subset, every other
    slice dropped and restored; or load superres.checkpoint. Never sees the held-out subjects."""
    input:
        images=get_superres_training_images,
    output:
        generator=f"{RESULTS}/superres/generator.pt",
        history=f"{RESULTS}/superres/history.tsv",
        subjects=f"{RESULTS}/superres/subjects.tsv",
    log:
        f"{RESULTS}/logs/train_superres/train_superres.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_superres/train_superres.tsv"
    conda:
        "../../envs/superres.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        superres=config["superres"],
        train=PLAN.sr_train,
        heldout=PLAN.sr_heldout,
    script:
        "../scripts/train_superres.py"


rule evaluate_superres:
    """PSNR and SSIM of the generator vs. linear and cubic B-spline interpolation on the held-out
    subjects' true dropped slices."""
    input:
        generator=f"{RESULTS}/superres/generator.pt",
        images=expand(f"{RESULTS}/subjects/{{subject}}/coreg/{PLAN.radiomics_modality}.nii.gz", subject=PLAN.sr_heldout),
    output:
        quality=report(
            f"{RESULTS}/superres/quality.tsv",
            caption="../report/superres_quality.rst",
            category="Super-resolution",
            labels={"table": "PSNR / SSIM on held-out subjects"},
        ),
        quality_md=f"{RESULTS}/superres/quality.md",
    log:
        f"{RESULTS}/logs/evaluate_superres/evaluate_superres.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_superres/evaluate_superres.tsv"
    conda:
        "../../envs/superres.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        axes=config["superres"]["axes"],
        subjects=PLAN.sr_heldout,
    script:
        "../scripts/evaluate_superres.py"


rule apply_superres:
    """The subject's radiomics image at x2 along superres.axes (generator; in predict the bundle's)
    and its tumor mask on the same grid (nearest neighbour)."""
    input:
        generator=PLAN.superres_generator,
        image=f"{RESULTS}/subjects/{{subject}}/coreg/{PLAN.radiomics_modality}.nii.gz",
        tumor_mask=get_feature_tumor_mask,
    output:
        image=f"{RESULTS}/subjects/{{subject}}/superres/{PLAN.radiomics_modality}.nii.gz",
        tumor_mask=f"{RESULTS}/subjects/{{subject}}/superres/tumor_mask.nii.gz",
    log:
        f"{RESULTS}/logs/apply_superres/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/apply_superres/{{subject}}.tsv"
    conda:
        "../../envs/superres.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        axes=config["superres"]["axes"],
    script:
        "../scripts/apply_superres.py"
