"""Rule summarize_qc: the cohort QC table (qc/qc.tsv), flagged subjects first."""
import sys

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow import atomic
from oncoflow.preprocess.qc import summarize_cohort

rows = [pd.read_csv(path, sep="\t", dtype={"subject": str}) for path in sm.input.rows]
reference = pd.read_csv(sm.input.reference[0], sep="\t") if sm.input.reference else None
table = summarize_cohort(rows, list(sm.params.modalities), reference=reference)
atomic.write_table(table, sm.output.table, index=False)
flagged = table[table["n_flags"] > 0]
print(f"{len(table)} subjects, {len(flagged)} flagged; cohort checks {table['cohort_check'].iloc[0]}",
      file=sys.stderr)
for _, row in flagged.iterrows():
    print(f"  {row['subject']}: {row['flag']}", file=sys.stderr)
