"""Rule extract_brain: brain mask on the reference modality, applied to all modalities, and the
second opinion's mask for QC."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.preprocess.brain import NETWORK_BACKENDS, HdbetSettings
from oncoflow.preprocess.subject import extract_brain_subject

modalities = sm.params.modalities
brain = sm.params.brain
device = "cpu"
if brain["backend"] in NETWORK_BACKENDS:  # backend none runs no second opinion either
    # torch only when a network runs: its import alone is 2.3 CPU s a job
    import torch

    torch.set_num_threads(sm.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
extract_brain_subject(
    sm.wildcards.subject,
    {m: Path(sm.input[m]) for m in modalities},
    {m: Path(sm.output[m]) for m in modalities},
    reference=sm.params.reference,
    mask_out=Path(sm.output.mask),
    report=Path(sm.output.report),
    backend=brain["backend"],
    hdbet=HdbetSettings(**brain["hdbet"]),
    second_opinion=brain["second_opinion"],
    second_mask_out=Path(sm.output.second_mask),
    min_agreement=brain["min_agreement"],
    device=device,
)
