"""Rule split_folds: patient-level folds (cv.scheme; sites from cohort.site), written for audit."""
import sys

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.train.folds import make_folds

sheet = pd.read_csv(sm.input.samples, sep="\t", dtype=str, keep_default_na=False)
sheet["y"] = (sheet[sm.params.label] == str(sm.params.positive)).astype(int)
cv = sm.params.cv
splits = make_folds(sheet, label="y", folds=cv["folds"], seed=cv["seed"],
                    val_fraction=cv["val_fraction"], external_cohorts=tuple(sm.params.external),
                    repeats=cv["repeats"], **{k: cv[k] for k in ("scheme", "site", "min_site_size") if k in cv})
splits.to_csv(sm.output.splits, sep="\t", index=False)
print(splits.groupby(["fold", "role"]).size().unstack(fill_value=0).to_string(), file=sys.stderr)
