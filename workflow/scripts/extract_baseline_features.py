"""Rule extract_baseline_features: one row of baseline features per subject."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.baseline.features import cohort_features

results = Path(sm.output.features).parent.parent  # results/<study>/baseline/features.tsv
table = cohort_features(list(sm.params.subjects), list(sm.params.modalities), results,
                        [Path(p) for p in sm.input.tumor_masks])
table.to_csv(sm.output.features, sep="\t", index=False, float_format="%.6g")
print(table.describe().T.to_string(), file=sys.stderr)
