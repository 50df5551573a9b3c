"""Rule convert_dicom: one subject's DICOM folder -> de-identified NIfTI per modality."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.ingest.identity import IdentityPolicy
from oncoflow.ingest.subject import ingest_subject

ingest_subject(
    sm.wildcards.subject,
    Path(sm.input.dicom),
    sm.params.rules,
    Path(sm.output.series).parent,
    modalities=list(sm.params.rules),
    # read from the config, not params: overrides change pass/fail only, never an output
    policy=IdentityPolicy.from_config(sm.config.get("ingest")),
)
