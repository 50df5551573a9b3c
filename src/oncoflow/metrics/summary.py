"""One row of the evaluation table: every metric for one model's predictions."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ._validation import check_inputs, check_level, check_n_boot
from .classification import _threshold_metrics, check_threshold
from .roc import _auc_ci, _pr_auc

__all__ = ["SUMMARY_KEYS", "summarize"]

#: Keys of :func:`summarize`'s dict, in order (= the columns of metrics.tsv).
SUMMARY_KEYS: tuple[str, ...] = (
    "n", "n_pos", "prevalence", "threshold", "accuracy", "balanced_accuracy",
    "sensitivity", "specificity", "ppv", "npv", "f1",
    "auc", "auc_ci_low", "auc_ci_high", "auprc", "brier", "note",
)


def summarize(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5,
              ci_method: Literal["delong", "bootstrap"] = "delong", level: float = 0.95,
              n_boot: int = 2000, seed: int | None = 0) -> dict[str, Any]:
    """All metrics for predicted probabilities ``y_score`` of labels ``y_true`` (0/1).

    Returns a dict with exactly :data:`SUMMARY_KEYS`. Invalid input (length mismatch,
    NaN scores, labels not in {0, 1}, empty) raises ValueError. Values that are undefined
    for this input are NaN, and ``note`` ('; '-separated) says why; ``note`` also flags a
    zero-width AUC CI (perfect separation, constant scores). ``note`` is '' otherwise.
    """
    if ci_method not in ("delong", "bootstrap"):
        raise ValueError(f"ci_method must be 'delong' or 'bootstrap', got {ci_method!r}")
    check_level(level)
    check_n_boot(n_boot)
    y, (s,) = check_inputs(y_true, y_score)
    thr = check_threshold(threshold)

    tm = _threshold_metrics(y, s, thr)
    notes = [tm["note"]]
    a, lo, hi, auc_note = _auc_ci(y, s, ci_method, level, n_boot, seed)
    notes.append(auc_note)
    if y.any():
        auprc = _pr_auc(y, s)
    else:
        auprc = float("nan")
        notes.append("auprc undefined: no positive cases")
    if np.all((s >= 0) & (s <= 1)):
        brier = float(np.mean((s - y) ** 2))
    else:
        brier = float("nan")
        notes.append("brier undefined: scores outside [0, 1] are not probabilities")

    row = {k: tm[k] for k in SUMMARY_KEYS if k in tm}
    row.update(threshold=thr, auc=a, auc_ci_low=lo, auc_ci_high=hi, auprc=auprc, brier=brier,
               note="; ".join(n for n in notes if n))
    return {k: row[k] for k in SUMMARY_KEYS}
