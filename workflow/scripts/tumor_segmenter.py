"""Rule tumor_segmenter: one fold's segmenter from its train + val patients' manual masks."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.segment.jobs import fit_fold_segmenter

fit_fold_segmenter(int(sm.wildcards.fold), list(sm.params.subjects), [Path(p) for p in sm.input.images],
                   [Path(p) for p in sm.input.brain_masks], [Path(p) for p in sm.input.tumor_masks],
                   sm.params.segment, pd.read_csv(sm.input.splits, sep="\t"), Path(sm.output.checkpoint),
                   Path(sm.output.history), threads=sm.threads)
