"""Rule fit_baseline_model: the baseline on one fold."""
import sys

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.baseline.model import fit_baseline_fold
from oncoflow.harmonisation import HarmonisationSettings

features = pd.read_csv(sm.input.features, sep="\t", dtype={"subject": str})
splits = pd.read_csv(sm.input.splits, sep="\t", dtype={"subject": str})
preds, coefs = fit_baseline_fold(features, splits, int(sm.wildcards.fold), seed=int(sm.params.seed),
                                 harmonisation=HarmonisationSettings.from_config(dict(sm.params.harmonisation)))
preds.to_csv(sm.output.predictions, sep="\t", index=False, float_format="%.6f")
coefs.to_csv(sm.output.coefficients, sep="\t", index=False, float_format="%.6g")
print(coefs.to_string(), file=sys.stderr)
