"""oncoflow.metrics: evaluation metrics and paper tables, usable outside the workflow.

Depends only on numpy, scipy and pandas. AUC confidence intervals and the paired DeLong
test reproduce R's pROC (checked against pROC 1.18.0 in tests/test_metrics.py).

- ROC: :func:`auc`, :func:`auc_ci`, :func:`delong_test`, :func:`roc_curve_points`,
  :func:`roc_band` (pointwise stratified-bootstrap band, as pROC's ``ci.se``)
- precision-recall: :func:`pr_auc`, :func:`pr_curve_points`
- thresholds: :func:`youden_threshold`, :func:`threshold_metrics`; all of it: :func:`summarize`
- model comparison: :func:`compare_aucs` (paired DeLong), :func:`adjust_pvalues`
  (holm / bonferroni / fdr_bh)
- decision curves: :func:`decision_curve`, :func:`threshold_grid`
- calibration: :func:`calibration_curve` (binned, Wilson intervals); Brier in :func:`summarize`
- tables: :func:`to_markdown`, :func:`to_latex`

The study level (cohorts, folds, files) is in :mod:`oncoflow.metrics.evaluate` and
:mod:`oncoflow.metrics.curves`.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule. Imported on first use (PEP 562), not with the package: the study plan imports
# oncoflow.metrics.choices at parse time, i.e. at every Snakemake job's start, and loading these
# (scipy.stats) with it would cost about 0.5 CPU s there.
_HOME = {
    "MetricWarning": "_validation",
    "calibration_curve": "calibration",
    "threshold_metrics": "classification", "youden_threshold": "classification",
    "CORRECTIONS": "compare", "adjust_pvalues": "compare", "compare_aucs": "compare",
    "decision_curve": "decision", "threshold_grid": "decision",
    **dict.fromkeys(("auc", "auc_ci", "delong_test", "pr_auc", "pr_curve_points", "roc_band", "roc_curve_points"),
                    "roc"),
    "SUMMARY_KEYS": "summary", "summarize": "summary",
    "to_latex": "tables", "to_markdown": "tables",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
