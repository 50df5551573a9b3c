# Tumor segmentation learned from the study's own manual masks (config `segment`; off by default).
# One segmenter per outer fold, trained on that fold's train + val patients with a manual mask; it
# predicts only the fold's test and external patients (cross-fitting). crop_tumor reads a predicted
# mask where segment.crop_mask asks for one (get_crop_tumor_mask).


rule tumor_segmenter:
    """One fold's tumor segmenter (MONAI 2D U-Net on axial brain slices) from the fold's train +
    val patients' images and manual masks; never a test or external patient."""
    input:
        unpack(get_segmenter_training_inputs),
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        checkpoint=f"{RESULTS}/segment/fold{{fold}}/segmenter.pt",
        history=f"{RESULTS}/segment/fold{{fold}}/history.tsv",
    log:
        f"{RESULTS}/logs/tumor_segmenter/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tumor_segmenter/fold{{fold}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        segment=get_segment_params,
        subjects=segmenter_input_subjects,
    script:
        "../scripts/tumor_segmenter.py"


rule predicted_tumor_mask:
    """A test or external patient's tumor mask predicted by the fold's segmenter (reference grid,
    like the manual mask), scored against the manual mask where the sheet gives one."""
    input:
        unpack(get_segmented_subject_inputs),
        segmenter=f"{RESULTS}/segment/fold{{fold}}/segmenter.pt",
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        mask=f"{RESULTS}/segment/fold{{fold}}/masks/{{subject}}.nii.gz",
        scores=f"{RESULTS}/segment/fold{{fold}}/masks/{{subject}}.tsv",
    log:
        f"{RESULTS}/logs/predicted_tumor_mask/fold{{fold}}_{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predicted_tumor_mask/fold{{fold}}_{{subject}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        segment=get_segment_params,
        modalities=segment_input_modalities,
    script:
        "../scripts/predicted_tumor_mask.py"


rule segmentation_table:
    """One fold's segmentation table: every test and external patient's Dice, HD95, volumes and
    detection against the manual mask (NaN, with the reason, where the sheet has none)."""
    input:
        scores=get_fold_segmentation_scores,
    output:
        table=f"{RESULTS}/segment/fold{{fold}}/segmentation.tsv",
    log:
        f"{RESULTS}/logs/segmentation_table/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation_table/fold{{fold}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/segmentation_table.py"


rule segmentation_summary:
    """Every fold's segmentation table summarised (Dice mean, median and range, median HD95, volume
    difference, detection) per fold and role, and over the cross-fitted masks the crops may use."""
    input:
        tables=get_segmentation_tables,
    output:
        table=f"{RESULTS}/tables/segmentation.tsv",
    log:
        f"{RESULTS}/logs/segmentation_summary/segmentation_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation_summary/segmentation_summary.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/segmentation_summary.py"
