"""Rule correct_bias: N4 of every modality of one subject (copied unchanged when switched off)."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.preprocess.subject import bias_correct_subject

modalities = sm.params.modalities
bias_correct_subject(
    sm.wildcards.subject,
    {m: Path(sm.input[m]) for m in modalities},
    {m: Path(sm.output[m]) for m in modalities},
    shrink_factor=sm.params.n4["shrink_factor"],
    iterations=tuple(sm.params.n4["iterations"]),
    activate=sm.params.n4["activate"],
)
