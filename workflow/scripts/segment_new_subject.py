"""Rule segment_new_subject: a new subject's tumor masks from the bundle's segmenters, and the
crops of the plausible ones (oncoflow.segment.new_subjects)."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.segment.new_subjects import segment_new_subject

folds = sm.params.folds
table = segment_new_subject(
    sm.wildcards.subject, {m: Path(sm.input[m]) for m in sm.params.modalities}, Path(sm.input.brain_mask),
    dict(zip(folds, map(Path, sm.input.segmenters), strict=True)), sm.params.bounds, sm.params.crop,
    dict(zip(folds, map(Path, sm.output.masks), strict=True)), Path(sm.output.crops), Path(sm.output.table))
print(table.drop(columns=["mask", "crop"]).to_string(index=False), file=sys.stderr)
