"""Rule evaluate_models: metrics table (TSV, Markdown, LaTeX) and pooled predictions."""
import sys

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.metrics.evaluate import evaluate_predictions, write_tables

preds = pd.concat([pd.read_csv(p, sep="\t") for p in sm.input.predictions], ignore_index=True)
ev = sm.params.evaluate
metrics, pooled = evaluate_predictions(preds, threshold=ev["threshold"], ci_method=ev["ci_method"],
                                       level=ev["ci_level"])
write_tables(metrics, pooled, sm.output)
print(metrics.to_string(), file=sys.stderr)
