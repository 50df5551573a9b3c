"""Rule segmentation_summary: every fold's segmentation table summarised (tables/segmentation.tsv)."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.segment.jobs import segmentation_summary

print(segmentation_summary([Path(p) for p in sm.input.tables], Path(sm.output.table)).to_string())
