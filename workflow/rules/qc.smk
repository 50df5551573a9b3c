# Quality control of the preprocessing: a montage per subject and one table for the cohort, so a
# failed subject shows at a glance (results/<study>/qc/).


rule plot_qc_montage:
    """Every co-registered modality in three orthogonal slices through the tumor centre, brain (and
    second-opinion brain) and tumor outlines (and the cross-fitted predicted tumor, with segment on),
    subject ID and flags; with preprocess.atlas, the
    reference on the atlas with the template's brain outline; and the subject's row of QC numbers."""
    input:
        unpack(get_qc_atlas),
        **per_modality("coreg"),
        brain_mask=f"{RESULTS}/subjects/{{subject}}/brain/brain_mask.nii.gz",
        second_mask=f"{RESULTS}/subjects/{{subject}}/brain/second_opinion_mask.nii.gz",
        brain_report=f"{RESULTS}/subjects/{{subject}}/brain/brain.tsv",
        registration=f"{RESULTS}/subjects/{{subject}}/coreg/registration.tsv",
        tumor_mask=get_qc_tumor_mask,
        predicted_mask=get_qc_predicted_mask,
    output:
        png=report(
            f"{RESULTS}/qc/{{subject}}.png",
            caption="../report/qc_montage.rst",
            category="Quality control",
            subcategory="Montages",
            labels={"subject": "{subject}"},
        ),
        row=f"{RESULTS}/qc/{{subject}}.tsv",
    log:
        f"{RESULTS}/logs/plot_qc_montage/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/plot_qc_montage/{{subject}}.tsv"
    group:
        SEGMENTED_CROP_GROUP
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=5,
    params:
        modalities=MODALITIES,
        reference=REFERENCE,
    script:
        "../scripts/plot_qc_montage.py"


rule summarize_qc:
    """The cohort's QC table: one row per subject, a flag column (subject and cohort-outlier
    findings), flagged subjects first; in predict the cohort checks judge the new subjects against
    the training cohort's distributions in the bundle (qc_reference.tsv)."""
    input:
        rows=get_qc_rows,
        reference=PLAN.qc_reference,
    output:
        table=report(
            f"{RESULTS}/qc/qc.tsv",
            caption="../report/qc_table.rst",
            category="Quality control",
            subcategory="Table",
            labels={"table": "QC per subject", "file": "qc.tsv"},
        ),
    log:
        f"{RESULTS}/logs/summarize_qc/summarize_qc.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize_qc/summarize_qc.tsv"
    localrule: True
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        modalities=MODALITIES,
    script:
        "../scripts/summarize_qc.py"
