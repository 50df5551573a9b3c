"""Rule register_modalities: every modality onto the reference grid, with its transform."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.preprocess.subject import coregister_subject

modalities = list(sm.params.modalities)
coregister_subject(
    sm.wildcards.subject,
    {m: Path(sm.input[m]) for m in modalities},
    {m: Path(sm.output[m]) for m in modalities},
    reference=sm.params.reference,
    report=Path(sm.output.report),
    transform=sm.params.registration["transform"],
    iterations=tuple(sm.params.registration["iterations"]),
    transforms_out={m: Path(sm.output[f"{m}_transform"]) for m in modalities},
)
