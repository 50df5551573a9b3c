"""Rule evaluate_superres: PSNR/SSIM of GAN vs. interpolation on held-out subjects."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import torch

from oncoflow.superres.evaluate import evaluate_heldout, quality_markdown
from oncoflow.superres.gan import load_checkpoint

torch.set_num_threads(sm.threads)
gen, _ = load_checkpoint(Path(sm.input.generator))
images = {Path(p).parent.parent.name: Path(p) for p in sm.input.images}
table = evaluate_heldout(gen, images, list(sm.params.axes))
table.to_csv(sm.output.quality, sep="\t", index=False, float_format="%.4f")
Path(sm.output.quality_md).write_text(quality_markdown(table))
