"""Rule apply_superres: one subject's image and tumor mask at x2 along superres.axes."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import torch

from oncoflow.superres.evaluate import apply_to_subject
from oncoflow.superres.gan import load_checkpoint

torch.set_num_threads(sm.threads)
gen, _ = load_checkpoint(Path(sm.input.generator))
apply_to_subject(sm.wildcards.subject, gen, Path(sm.input.image), Path(sm.input.tumor_mask),
                 list(sm.params.axes), Path(sm.output.image), Path(sm.output.tumor_mask))
