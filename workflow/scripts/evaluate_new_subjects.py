"""Rule evaluate_new_subjects: the new cohort's metrics beside the study's cross-validated AUC."""
import sys

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow import atomic
from oncoflow.metrics.tables import to_markdown
from oncoflow.predict.apply import new_cohort_metrics

e = sm.params.evaluate
cv = pd.read_csv(sm.input.cv_metrics[0], sep="\t") if sm.input.cv_metrics else None
metrics = new_cohort_metrics(pd.read_csv(sm.input.predictions, sep="\t", dtype={"subject": str}), cv,
                             ci_method=e["ci_method"], level=e["ci_level"], n_boot=e["n_boot"])
atomic.write_table(metrics, sm.output.metrics, sep="\t", index=False, float_format="%.4f")
atomic.write_text(sm.output.metrics_md, to_markdown(metrics) + "\n")
print(metrics.to_string(), file=sys.stderr)
