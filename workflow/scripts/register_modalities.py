"""Rule register_modalities: every modality onto the reference grid; tumor mask follows."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.preprocess.subject import coregister_subject

modalities = [k for k in sm.output.keys() if k not in ("tumor_mask", "report")]
coregister_subject(
    sm.wildcards.subject,
    {m: Path(sm.input[m]) for m in modalities},
    {m: Path(sm.output[m]) for m in modalities},
    reference=sm.params.reference,
    tumor_mask=Path(sm.input.tumor_mask),
    tumor_mask_space=sm.params.tumor_mask_space,
    tumor_mask_out=Path(sm.output.tumor_mask),
    report=Path(sm.output.report),
    transform=sm.params.registration["transform"],
    iterations=tuple(sm.params.registration["iterations"]),
)
