"""Rule compare_models: paired DeLong tests, pre-specified (tables/comparisons.*) and all pairs
(tables/comparisons_exploratory.*)."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.metrics.evaluate import compare_study

pooled = pd.read_csv(sm.input.predictions, sep="\t")
table, _ = compare_study(pooled, Path(sm.output.comparisons).parent,
                         comparisons=[list(p) for p in sm.params.comparisons], correction=sm.params.correction,
                         level=sm.params.level)
print(table.to_string(), file=sys.stderr)
