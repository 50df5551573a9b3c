# A subject's images come from a DICOM folder (convert_dicom) or a folder of NIfTI files
# (import_nifti), whichever its sample-sheet row gives; both write the same raw/ outputs. The
# wildcard constraints send each subject to exactly one of the two rules.


rule convert_dicom:
    """Sort a subject's DICOM folder into series, map series to modalities, convert with dcm2niix and
    de-identify the sidecars."""
    input:
        dicom=get_dicom_dir,
    output:
        **per_modality("raw"),
        series=f"{RESULTS}/subjects/{{subject}}/raw/series.tsv",
    log:
        f"{RESULTS}/logs/convert_dicom/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/convert_dicom/{{subject}}.tsv"
    wildcard_constraints:
        subject=alternation(PLAN.subjects_from("dicom")),
    group:
        "subject"
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        rules=config["ingest"]["modalities"],
    script:
        "../scripts/convert_dicom.py"


rule import_nifti:
    """Conversion-free ingest: copy a subject's <modality>.nii.gz files with header text scrubbed and
    sidecars de-identified; voxels and geometry untouched."""
    input:
        nifti=get_nifti_dir,
        files=get_nifti_files,
    output:
        **per_modality("raw"),
        series=f"{RESULTS}/subjects/{{subject}}/raw/series.tsv",
    log:
        f"{RESULTS}/logs/import_nifti/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/import_nifti/{{subject}}.tsv"
    wildcard_constraints:
        subject=alternation(PLAN.subjects_from("nifti")),
    group:
        "subject"
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        modalities=MODALITIES,
    script:
        "../scripts/import_nifti.py"
