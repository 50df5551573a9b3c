rule convert_dicom:
    """Sort a subject's DICOM folder into series, map series to modalities, convert with dcm2niix and
    de-identify the sidecars."""
    input:
        dicom=get_dicom_dir,
    output:
        **per_modality("raw"),
        series=f"{RESULTS}/subjects/{{subject}}/raw/series.tsv",
    params:
        rules=config["ingest"]["modalities"],
    log:
        f"{RESULTS}/logs/convert_dicom/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/convert_dicom/{{subject}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/ingest.yaml"
    script:
        "../scripts/convert_dicom.py"
