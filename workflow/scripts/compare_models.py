"""Rule compare_models: pairwise DeLong tests between models (tables/comparisons.*)."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.metrics.evaluate import compare_models, write_comparisons

pooled = pd.read_csv(sm.input.predictions, sep="\t")
table = compare_models(pooled, correction=sm.params.correction, level=sm.params.level)
write_comparisons(table, Path(sm.output.comparisons).parent)
print(table.to_string(), file=sys.stderr)
