"""Rule evaluate_models: metrics tables (per model and cohort, per fold) and pooled predictions."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.metrics.evaluate import evaluate_study

preds = pd.concat([pd.read_csv(p, sep="\t") for p in sm.input.predictions], ignore_index=True)
splits = pd.read_csv(sm.input.splits, sep="\t", dtype={"site": str}, keep_default_na=False)
metrics = evaluate_study(preds, Path(sm.output.metrics).parent, seed=sm.params.seed, folds=int(sm.params.folds),
                         splits=splits, prediction_sets=sm.params.prediction_sets, **sm.params.evaluate)
print(metrics.to_string(), file=sys.stderr)
