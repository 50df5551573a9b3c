"""Threshold choice and confusion-matrix metrics.

A case is called positive when ``score >= threshold`` (as pROC's ``coords``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import check_inputs, single_class_reason, warn

__all__ = ["youden_threshold", "threshold_metrics", "wilson_interval", "proportion_cis", "PROPORTIONS"]

NAN = float("nan")


def youden_threshold(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1.

    Candidates are pROC's: -inf, midpoints between consecutive distinct scores, +inf.
    Ties between candidates: the largest threshold (fewest positive calls) wins; it is
    one of the thresholds pROC's ``coords(roc, "best", best.method="youden")`` lists.
    Constant scores give +inf (J = 0 everywhere). NaN (MetricWarning) for a single class.
    """
    y, (s,) = check_inputs(y_true, y_score)
    if reason := single_class_reason(y):
        warn(f"youden_threshold undefined: {reason}")
        return NAN
    u, code = np.unique(s, return_inverse=True)
    pos = np.bincount(code[y], minlength=u.size)
    neg = np.bincount(code[~y], minlength=u.size)
    thr = np.r_[-np.inf, (u[:-1] + u[1:]) / 2.0, np.inf]  # computed as pROC does
    # threshold thr[i] calls positive the values u[i:], i = 0..K
    tp = np.r_[np.cumsum(pos[::-1])[::-1], 0]
    tn = np.r_[0, np.cumsum(neg)]
    j = tp * neg.sum() + tn * pos.sum()  # J scaled by m*n: exact integers, so ties are exact
    best = np.flatnonzero(j == j.max())
    return float(thr[best[-1]])


def _ratio(num: int, den: int) -> float:
    return num / den if den else NAN


def _threshold_metrics(y: NDArray[np.bool_], s: NDArray[np.float64], threshold: float) -> dict[str, Any]:
    pred = s >= threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = int(np.sum(~pred & ~y))
    n, n_pos = y.size, tp + fn
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    notes = []
    if n_pos == 0:
        notes.append("sensitivity undefined: no positive cases")
    if n_pos == n:
        notes.append("specificity undefined: no negative cases")
    if tp + fp == 0:
        notes.append(f"ppv undefined: no case predicted positive at threshold {threshold:g}")
    if tn + fn == 0:
        notes.append(f"npv undefined: no case predicted negative at threshold {threshold:g}")
    if tp + fp + fn == 0:
        notes.append("f1 undefined: no positive cases and none predicted positive")
    return {
        "n": n,
        "n_pos": n_pos,
        "prevalence": n_pos / n,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "accuracy": (tp + tn) / n,
        "balanced_accuracy": (sens + spec) / 2.0,  # NaN if either is undefined
        "sensitivity": sens,
        "specificity": spec,
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "note": "; ".join(notes),
    }


def check_threshold(threshold: float) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number, got {threshold!r}") from None
    if math.isnan(t):
        raise ValueError("threshold is NaN")
    return t


def threshold_metrics(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> dict[str, Any]:
    """Confusion-matrix metrics when calling ``score >= threshold`` positive.

    Keys: n, n_pos, prevalence, tp, fp, tn, fn, accuracy, balanced_accuracy, sensitivity,
    specificity, ppv, npv, f1, note. Undefined ratios (e.g. ppv when nothing is predicted
    positive) are NaN and ``note`` says why ('' when everything is defined).
    """
    y, (s,) = check_inputs(y_true, y_score)
    return _threshold_metrics(y, s, check_threshold(threshold))


#: Threshold metrics that are proportions: metric -> (numerator, denominator) counts of the confusion matrix.
PROPORTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "accuracy": (("tp", "tn"), ("tp", "tn", "fp", "fn")),
    "sensitivity": (("tp",), ("tp", "fn")),
    "specificity": (("tn",), ("tn", "fp")),
    "ppv": (("tp",), ("tp", "fp")),
    "npv": (("tn",), ("tn", "fn")),
}


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion k / n (Wilson 1927; Newcombe 1998 recommends it over
    the Wald interval, which collapses to zero width at 0 / n and n / n). NaN when n = 0."""
    from .calibration import _wilson

    if n <= 0:
        return NAN, NAN
    low, high = _wilson(np.array([float(k)]), np.array([float(n)]), level)
    return float(low[0]), float(high[0])


def proportion_cis(counts: dict[str, Any], level: float = 0.95) -> dict[str, float]:
    """``<metric>_ci_low`` / ``_ci_high`` (Wilson) of every metric of :data:`PROPORTIONS`, from a
    :func:`threshold_metrics` result's tp / fp / tn / fn."""
    out = {}
    for metric, (num, den) in PROPORTIONS.items():
        lo, hi = wilson_interval(sum(int(counts[c]) for c in num), sum(int(counts[c]) for c in den), level)
        out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = lo, hi
    return out
