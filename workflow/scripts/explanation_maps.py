"""Rule explanation_maps: one CNN fold model's maps for its test patients, and the randomisation check."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow import atomic
from oncoflow.explain.sanity import explain_test_patients

crops = dict(zip(sm.params.subjects, map(Path, sm.input.crops), strict=True))
table = explain_test_patients(Path(sm.input.checkpoint), crops, pd.read_csv(sm.input.splits, sep="\t"),
                              model_name=sm.wildcards.model, fold=int(sm.wildcards.fold), crop=sm.params.crop,
                              settings=sm.params.explain, seed=sm.params.seed, out_dir=Path(sm.output.maps), threads=sm.threads)
atomic.write_table(table, sm.output.patients, index=False, float_format="%.6f")
