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

from ._validation import MetricWarning
from .calibration import calibration_curve
from .classification import threshold_metrics, youden_threshold
from .compare import CORRECTIONS, adjust_pvalues, compare_aucs
from .decision import decision_curve, threshold_grid
from .roc import auc, auc_ci, delong_test, pr_auc, pr_curve_points, roc_band, roc_curve_points
from .summary import SUMMARY_KEYS, summarize
from .tables import to_latex, to_markdown

__all__ = [
    "CORRECTIONS",
    "MetricWarning",
    "SUMMARY_KEYS",
    "adjust_pvalues",
    "auc",
    "auc_ci",
    "calibration_curve",
    "compare_aucs",
    "decision_curve",
    "delong_test",
    "pr_auc",
    "pr_curve_points",
    "roc_band",
    "roc_curve_points",
    "summarize",
    "threshold_grid",
    "threshold_metrics",
    "to_latex",
    "to_markdown",
    "youden_threshold",
]
