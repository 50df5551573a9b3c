"""Rule transform_tumor_mask: the sample sheet's tumor mask onto the reference grid."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.preprocess.subject import transform_tumor_mask_subject

transform_tumor_mask_subject(
    sm.wildcards.subject,
    Path(sm.input.tumor_mask),
    space=sm.params.space,
    space_image=Path(sm.input.space_image),
    reference_image=Path(sm.input.reference),
    transform=Path(sm.input.transform),
    out=Path(sm.output.tumor_mask),
)
