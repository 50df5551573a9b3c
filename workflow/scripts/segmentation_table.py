"""Rule segmentation_table: one fold's predicted masks scored against the manual ones."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.segment.jobs import segmentation_table

segmentation_table([Path(p) for p in sm.input.scores], Path(sm.output.table))
