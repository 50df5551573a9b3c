"""Rule import_nifti: one subject's folder of <modality>.nii.gz -> de-identified raw/ NIfTI."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.ingest.subject import ingest_nifti_folder

ingest_nifti_folder(sm.wildcards.subject, Path(sm.input.nifti), Path(sm.output.series).parent,
                    modalities=list(sm.params.modalities))
