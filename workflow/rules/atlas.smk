# Atlas space (preprocess.atlas.activate): each subject's brain on a template's grid, for whole-brain
# models; crop_tumor / crop_brain then read atlas/ instead of brain/ and coreg/.
CROP_STAGE, CROP_TUMOR_STAGE = crop_stages(config)


rule register_to_atlas:
    """The brain-extracted reference registered to the template (preprocess.atlas), every modality,
    the brain mask and the tumor mask carried onto the template grid (all-zero tumor mask for a
    subject without one); atlas.tsv holds the brain-mask Dice with the template's brain mask, and
    template_mask.nii.gz the template's brain mask (the QC montage draws both outlines)."""
    input:
        **per_modality("brain"),
        brain_mask=f"{RESULTS}/subjects/{{subject}}/brain/brain_mask.nii.gz",
        tumor_mask=get_qc_tumor_mask,
    output:
        **per_modality("atlas"),
        brain_mask=f"{RESULTS}/subjects/{{subject}}/atlas/brain_mask.nii.gz",
        tumor_mask=f"{RESULTS}/subjects/{{subject}}/atlas/tumor_mask.nii.gz",
        transform=f"{RESULTS}/subjects/{{subject}}/atlas/reference_to_atlas.mat",
        report=f"{RESULTS}/subjects/{{subject}}/atlas/atlas.tsv",
        template_mask=f"{RESULTS}/subjects/{{subject}}/atlas/template_mask.nii.gz",
    log:
        f"{RESULTS}/logs/register_to_atlas/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/register_to_atlas/{{subject}}.tsv"
    group:
        "subject"
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        reference=REFERENCE,
        atlas=config["preprocess"]["atlas"],
    script:
        "../scripts/register_to_atlas.py"
