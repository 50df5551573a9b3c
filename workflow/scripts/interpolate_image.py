"""Rule interpolate_image: one subject's image and tumor mask at x2 along superres.axes by
interpolation (the control arm of super-resolution)."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.superres.subject import interpolate_subject

interpolate_subject(sm.wildcards.subject, Path(sm.input.image), Path(sm.input.tumor_mask), list(sm.params.axes),
                    Path(sm.output.image), Path(sm.output.tumor_mask), method=sm.params.method)
