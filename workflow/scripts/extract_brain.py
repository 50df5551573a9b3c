"""Rule extract_brain: brain mask on the reference modality, applied to all modalities."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import torch

from oncoflow.preprocess.subject import extract_brain_subject

torch.set_num_threads(sm.threads)
modalities = sm.params.modalities
extract_brain_subject(
    sm.wildcards.subject,
    {m: Path(sm.input[m]) for m in modalities},
    {m: Path(sm.output[m]) for m in modalities},
    reference=sm.params.reference,
    mask_out=Path(sm.output.mask),
    report=Path(sm.output.report),
    backend=sm.params.backend,
    hdbet_weights=Path(sm.params.hdbet_weights) if sm.params.hdbet_weights else None,
    device="cuda" if torch.cuda.is_available() else "cpu",
)
