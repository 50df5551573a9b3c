"""Rule compute_curves: ROC (+ band), PR, decision and calibration curves as tables (figures/*.tsv)."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.metrics.curves import write_curves

p = sm.params
pooled = pd.read_csv(sm.input.predictions, sep="\t")
write_curves(pooled, Path(sm.output.roc).parent, dca_range=p.dca_range, dca_step=p.dca_step,
             calibration_bins=p.calibration_bins, calibration_strategy=p.calibration_strategy,
             level=p.level, n_boot=p.n_boot, seed=p.seed)
print("curves written", file=sys.stderr)
