"""Rule plot_curves: ROC, PR, decision and calibration figures (figures/*.png, *.pdf)."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.figures import plot_study

plot_study(Path(sm.input.roc).parent, Path(sm.input.metrics), Path(sm.output.roc_png).parent)
