"""Rule tabulate_selection: tables/selection.tsv, the epoch each CNN fold model kept."""
from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow import atomic
from oncoflow.report.selection import reliability_text, selection_table

histories = dict(zip(map(tuple, sm.params.model_folds), sm.input.histories, strict=True))
table = selection_table(histories, pd.read_csv(sm.input.splits, sep="\t"), sm.params.train, sm.params.epochs)
atomic.write_table(table, sm.output.tsv, index=False, float_format="%.6f")
print(f"selection.tsv: {len(table)} fold models; {reliability_text(table) or 'validation sets large enough'}")
