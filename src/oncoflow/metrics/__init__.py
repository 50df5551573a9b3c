"""oncoflow.metrics: evaluation metrics and paper tables, usable outside the workflow.

Depends only on numpy, scipy and pandas. AUC confidence intervals and the paired DeLong
test reproduce R's pROC (checked against pROC 1.18.0 in tests/test_metrics.py).
"""

from ._validation import MetricWarning
from .classification import threshold_metrics, youden_threshold
from .roc import auc, auc_ci, delong_test, pr_auc, roc_curve_points
from .summary import SUMMARY_KEYS, summarize
from .tables import to_latex, to_markdown

__all__ = [
    "MetricWarning",
    "SUMMARY_KEYS",
    "auc",
    "auc_ci",
    "delong_test",
    "pr_auc",
    "roc_curve_points",
    "summarize",
    "threshold_metrics",
    "to_latex",
    "to_markdown",
    "youden_threshold",
]
