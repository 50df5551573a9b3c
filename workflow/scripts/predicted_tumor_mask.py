"""Rule predicted_tumor_mask: a test / external patient's mask from the fold's segmenter."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.segment.jobs import segment_subject

row = segment_subject(sm.wildcards.subject, int(sm.wildcards.fold),
                      dict(zip(sm.params.modalities, map(Path, sm.input.images), strict=True)),
                      Path(sm.input.brain_mask), Path(sm.input.manual_mask) if "manual_mask" in sm.input.keys() else None,
                      Path(sm.input.segmenter), pd.read_csv(sm.input.splits, sep="\t"), Path(sm.output.mask),
                      Path(sm.output.scores))
print(f"{sm.wildcards.subject}: predicted tumor mask {row}", file=sys.stderr)
