"""Rule tabulate_explanations: tables/explanation_sanity.tsv (and .html for the report), the maps' check per
model, fold and method."""
from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow import atomic
from oncoflow.explain.sanity import summarise
from oncoflow.report.explanations import sanity_page

patients = pd.concat([pd.read_csv(p, sep="\t") for p in sm.input.patients], ignore_index=True)
table = summarise(patients, float(sm.params.explain["max_random_spearman"]))
atomic.write_table(table, sm.output.tsv, index=False, float_format="%.6f")
atomic.write_text(sm.output.html, sanity_page(table, sm.params.explain))
flagged = table[table["weights_independent"]]
print(f"explanation_sanity.tsv: {len(table)} model/fold/method rows; {len(flagged)} flagged as not depending "
      "on the weights")
