"""ROC AUC with DeLong / stratified-bootstrap confidence intervals (pROC-compatible).

Convention: a higher score means "more likely positive" (pROC ``direction = "<"``).
Undefined quantities are returned as NaN together with a :class:`MetricWarning`
that states the reason; invalid input raises ``ValueError``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm, rankdata

from ._validation import check_inputs, check_level, check_n_boot, single_class_reason, warn

__all__ = ["auc", "auc_ci", "delong_test", "roc_curve_points", "roc_band", "pr_auc",
           "pr_curve_points"]

NAN = float("nan")
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# --------------------------------------------------------------------------- AUC
def _auc(y: BoolArray, s: FloatArray) -> float:
    """Mann-Whitney AUC from midranks (ties count 1/2); both classes must be present."""
    m = int(y.sum())
    n = y.size - m
    r = rankdata(s)[y].sum()
    return float((r - m * (m + 1) / 2.0) / (m * n))


def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve, P(score_pos > score_neg) + 1/2 P(tie).

    NaN (with a MetricWarning) when only one class is present.
    """
    y, (s,) = check_inputs(y_true, y_score)
    if reason := single_class_reason(y):
        warn(f"auc undefined: {reason}")
        return NAN
    return _auc(y, s)


# ----------------------------------------------------------------------- DeLong
def _placements(y: BoolArray, scores: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """DeLong structural components via midranks (Sun & Xu 2014), for k score rows.

    scores: (k, N). Returns theta (k,), V10 (k, m) for positives, V01 (k, n) for negatives.
    V10_i = fraction of negatives below positive i (+1/2 ties); V01_j = fraction of
    positives above negative j (+1/2 ties); theta = mean(V10) = mean(V01) = AUC.
    """
    m = int(y.sum())
    n = y.size - m
    tz = rankdata(scores, axis=1)  # midranks in the pooled sample
    tx = rankdata(scores[:, y], axis=1)  # ... among positives
    ty = rankdata(scores[:, ~y], axis=1)  # ... among negatives
    v10 = (tz[:, y] - tx) / n
    v01 = 1.0 - (tz[:, ~y] - ty) / m
    return v10.mean(axis=1), v10, v01


def _delong_cov(y: BoolArray, scores: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(theta, S): AUCs and their DeLong covariance matrix S = S10/m + S01/n."""
    theta, v10, v01 = _placements(y, scores)
    s10 = np.atleast_2d(np.cov(v10))  # ddof=1, as pROC
    s01 = np.atleast_2d(np.cov(v01))
    return theta, s10 / v10.shape[1] + s01 / v01.shape[1]


def _two_per_class(y: BoolArray, what: str) -> str:
    m = int(y.sum())
    n = y.size - m
    if m < 2 or n < 2:
        return f"{what} undefined: DeLong needs >= 2 positives and >= 2 negatives (got {m} and {n})"
    return ""


def _ci_delong(y: BoolArray, s: FloatArray, level: float) -> tuple[float, float, float, str]:
    a = _auc(y, s)
    if reason := _two_per_class(y, "auc CI"):
        return a, NAN, NAN, reason
    _, S = _delong_cov(y, s[None, :])
    se = float(np.sqrt(max(S[0, 0], 0.0)))
    z = float(norm.ppf(0.5 + level / 2.0))
    # pROC: qnorm(c(alpha/2, 1 - alpha/2), mean = auc, sd = se), clipped to [0, 1]
    lo, hi = min(max(a - z * se, 0.0), 1.0), min(max(a + z * se, 0.0), 1.0)
    note = "" if se > 0 else "auc CI has zero width: DeLong variance is 0 (constant scores or perfect separation)"
    return a, lo, hi, note


# -------------------------------------------------------------------- bootstrap
def _boot_aucs(y: BoolArray, s: FloatArray, n_boot: int, seed: int | None,
               max_block_elems: int = 1 << 21) -> FloatArray:
    """AUCs of n_boot stratified resamples (positives and negatives resampled separately).

    Vectorised over resamples: per resample, count the drawn negatives at each distinct
    negative score and cumulate (C[j] = #negatives below the j-th distinct value); then
    2 * AUC * m * n = sum over drawn positives of (#neg below + #neg at or below), two
    gathers from C (exact integers). Resamples are processed in blocks only to bound memory;
    positives and negatives use their own random streams, so blocking does not change results.
    """
    u_neg, code_neg = np.unique(s[~y], return_inverse=True)
    k = u_neg.size + 1
    lo = np.searchsorted(u_neg, s[y], side="left")  # distinct negative values < score
    hi = np.searchsorted(u_neg, s[y], side="right")  # distinct negative values <= score
    m, n = lo.size, code_neg.size
    rng_pos, rng_neg = (np.random.default_rng(ss) for ss in np.random.SeedSequence(seed).spawn(2))
    block = max(1, min(n_boot, max_block_elems // max(m + n, k)))
    out = np.empty(n_boot)
    for start in range(0, n_boot, block):  # a few memory-sized blocks, not one per resample
        b = min(block, n_boot - start)
        offset = (np.arange(b) * k)[:, None]
        keys = code_neg[rng_neg.integers(0, n, size=(b, n))] + 1 + offset
        c = np.cumsum(np.bincount(keys.ravel(), minlength=b * k).reshape(b, k), axis=1).ravel()
        ip = rng_pos.integers(0, m, size=(b, m))
        num2 = c[lo[ip] + offset].sum(axis=1) + c[hi[ip] + offset].sum(axis=1)
        out[start:start + b] = num2 / (2.0 * m * n)
    return out


def _ci_bootstrap(y: BoolArray, s: FloatArray, level: float, n_boot: int,
                  seed: int | None) -> tuple[float, float, float, str]:
    a = _auc(y, s)
    boots = _boot_aucs(y, s, n_boot, seed)
    # percentile CI, quantile type 7 as R's quantile() used by pROC
    lo, hi = np.quantile(boots, [0.5 - level / 2.0, 0.5 + level / 2.0])
    note = "" if hi > lo else "auc CI has zero width: every bootstrap AUC is equal (constant scores or perfect separation)"
    return a, float(lo), float(hi), note


def _auc_ci(y: BoolArray, s: FloatArray, method: str, level: float, n_boot: int,
            seed: int | None) -> tuple[float, float, float, str]:
    if reason := single_class_reason(y):
        return NAN, NAN, NAN, f"auc undefined: {reason}"
    if method == "delong":
        return _ci_delong(y, s, level)
    return _ci_bootstrap(y, s, level, n_boot, seed)


def auc_ci(y_true: ArrayLike, y_score: ArrayLike,
           method: Literal["delong", "bootstrap"] = "delong", level: float = 0.95,
           n_boot: int = 2000, seed: int | None = 0) -> tuple[float, float, float]:
    """(auc, low, high): AUC with a two-sided confidence interval.

    method="delong": pROC's ``ci.auc(method="delong")``: normal approximation on the AUC
      scale with the DeLong variance (fast midrank algorithm), clipped to [0, 1].
      low/high are NaN with fewer than 2 positives or 2 negatives.
    method="bootstrap": pROC's ``ci.auc(method="bootstrap", boot.stratified=TRUE)``:
      percentile interval of n_boot stratified resamples (seeded); the point estimate
      stays the full-sample AUC (pROC prints the bootstrap median instead).
    A zero-width interval (constant scores, perfect separation) comes with a MetricWarning.
    """
    if method not in ("delong", "bootstrap"):
        raise ValueError(f"method must be 'delong' or 'bootstrap', got {method!r}")
    check_level(level)
    check_n_boot(n_boot)
    y, (s,) = check_inputs(y_true, y_score)
    a, lo, hi, note = _auc_ci(y, s, method, level, int(n_boot), seed)
    if note:
        warn(note)
    return a, lo, hi


def delong_test(y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike) -> tuple[float, float]:
    """(z, p): DeLong's test for two correlated ROC curves on the same patients.

    As pROC ``roc.test(roc_a, roc_b, method="delong", paired=TRUE)``: z = (AUC_a - AUC_b) / sd,
    p two-sided. Equal AUCs with zero variance give (0, 1); NaN when undefined.
    """
    y, (a, b) = check_inputs(y_true, score_a, score_b)
    reason = _delong_test_reason(y)
    if reason:
        warn(reason)
        return NAN, NAN
    _, _, d, sd = _delong_pair(y, a, b)
    z, p = _z_p(d, sd)
    return z, p


def _delong_test_reason(y: BoolArray) -> str:
    reason = single_class_reason(y)
    return f"DeLong test undefined: {reason}" if reason else _two_per_class(y, "DeLong test")


def _delong_pair(y: BoolArray, a: FloatArray, b: FloatArray) -> tuple[float, float, float, float]:
    """(auc_a, auc_b, auc_a - auc_b, sd of the difference) for paired scores (DeLong)."""
    theta, S = _delong_cov(y, np.vstack([a, b]))
    d = float(theta[0] - theta[1])
    sd = float(np.sqrt(max(S[0, 0] + S[1, 1] - S[0, 1] - S[1, 0], 0.0)))
    return float(theta[0]), float(theta[1]), d, sd


def _z_p(d: float, sd: float) -> tuple[float, float]:
    if sd > 0:
        z = d / sd
    else:  # pROC: 0/0 -> 0, d/0 -> +-Inf
        z = 0.0 if d == 0 else float(np.copysign(np.inf, d))
    return z, float(2.0 * norm.sf(abs(z)))


# --------------------------------------------------------------- curves & AP
def _curve_counts(y: BoolArray, s: FloatArray) -> tuple[FloatArray, NDArray[np.int64], NDArray[np.int64]]:
    """Distinct thresholds (descending) and cumulative TP/FP counts for score >= threshold."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s.size - 1]  # end of each tie block
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    return s_sorted[last], tp, fp


def roc_curve_points(y_true: ArrayLike, y_score: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(fpr, tpr, thresholds) for every distinct threshold, descending, starting at +inf.

    A case is called positive when score >= threshold. NaN rates for a missing class.
    """
    y, (s,) = check_inputs(y_true, y_score)
    thr, tp, fp = _curve_counts(y, s)
    m, n = int(y.sum()), int((~y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.r_[0, tp] / m
        fpr = np.r_[0, fp] / n
    return fpr, tpr, np.r_[np.inf, thr]


def _pr_auc(y: BoolArray, s: FloatArray) -> float:
    _, tp, fp = _curve_counts(y, s)
    recall = tp / tp[-1]
    precision = tp / (tp + fp)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def pr_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Average precision: sum_k (R_k - R_{k-1}) P_k over distinct thresholds (sklearn's
    ``average_precision_score``, no interpolation). NaN when there are no positives."""
    y, (s,) = check_inputs(y_true, y_score)
    if not y.any():
        warn(f"pr_auc undefined: no positive cases (n={y.size})")
        return NAN
    return _pr_auc(y, s)


def pr_curve_points(y_true: ArrayLike, y_score: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(recall, precision, thresholds) for every distinct threshold, descending.

    Starts at recall 0, precision 1 (threshold +inf), as sklearn's ``precision_recall_curve``
    read backwards; a case is positive when score >= threshold. Recall is NaN without positives.
    """
    y, (s,) = check_inputs(y_true, y_score)
    thr, tp, fp = _curve_counts(y, s)
    m = int(y.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.r_[0.0, tp / m]
    precision = np.r_[1.0, tp / (tp + fp)]
    return recall, precision, np.r_[np.inf, thr]


def _tpr_at(fpr: FloatArray, tpr: FloatArray, grid: FloatArray) -> FloatArray:
    """TPR of an empirical ROC curve (points with non-decreasing fpr, starting at (0, 0)) at the
    given FPRs: the highest TPR at an FPR that is a curve point, linear in between (ties in the
    scores make diagonal segments, so the curve is linear between its points)."""
    # last point with fpr <= g; rates within 1e-12 count as equal (k / n computed two ways)
    i = np.searchsorted(fpr, grid + 1e-12, side="right") - 1
    j = np.minimum(i + 1, fpr.size - 1)
    f0, f1, t0, t1 = fpr[i], fpr[j], tpr[i], tpr[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(f1 > f0, np.clip((grid - f0) / (f1 - f0), 0.0, 1.0), 0.0)
    return t0 + w * (t1 - t0)


def roc_band(y_true: ArrayLike, y_score: ArrayLike, fpr: ArrayLike | None = None,
             level: float = 0.95, n_boot: int = 2000, seed: int | None = 0) -> pd.DataFrame:
    """Pointwise confidence band of the ROC curve: sensitivity at fixed false-positive rates.

    As pROC's ``ci.se(roc, specificities = 1 - fpr, boot.n, boot.stratified = TRUE)``: for each
    of ``n_boot`` stratified bootstrap resamples (positives and negatives resampled separately,
    seeded), the resample's empirical ROC curve is read at every ``fpr`` (the highest TPR at a
    curve point, linear between points); ``tpr_low`` / ``tpr_high`` are the percentile interval
    at each FPR. The band is pointwise, not a simultaneous band for the whole curve.

    Returns a DataFrame with columns fpr, tpr (the full sample's curve), tpr_low, tpr_high.
    Default grid: FPR 0, 0.01, ..., 1. With a single class every value is NaN (MetricWarning).
    """
    check_level(level)
    check_n_boot(n_boot)
    y, (s,) = check_inputs(y_true, y_score)
    grid = np.linspace(0.0, 1.0, 101) if fpr is None else np.asarray(fpr, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or np.isnan(grid).any() or (grid < 0).any() or (grid > 1).any():
        raise ValueError("fpr must be a non-empty 1-D array of rates in [0, 1]")
    out = pd.DataFrame({"fpr": grid, "tpr": NAN, "tpr_low": NAN, "tpr_high": NAN})
    if reason := single_class_reason(y):
        warn(f"roc band undefined: {reason}")
        return out
    u, code = np.unique(s, return_inverse=True)  # distinct scores, ascending
    code_pos, code_neg = code[y], code[~y]
    m, n, k = code_pos.size, code_neg.size, u.size

    def curve(pos_counts: NDArray[np.int64], neg_counts: NDArray[np.int64]) -> FloatArray:
        # thresholds at each distinct score, descending: cumulative counts from the top
        tp = np.r_[0, np.cumsum(pos_counts[::-1])] / m
        fp = np.r_[0, np.cumsum(neg_counts[::-1])] / n
        return _tpr_at(fp, tp, grid)

    out["tpr"] = curve(np.bincount(code_pos, minlength=k), np.bincount(code_neg, minlength=k))
    rng_pos, rng_neg = (np.random.default_rng(ss) for ss in np.random.SeedSequence(seed).spawn(2))
    boots = np.empty((int(n_boot), grid.size))
    for b in range(int(n_boot)):
        pos = np.bincount(code_pos[rng_pos.integers(0, m, m)], minlength=k)
        neg = np.bincount(code_neg[rng_neg.integers(0, n, n)], minlength=k)
        boots[b] = curve(pos, neg)
    out["tpr_low"], out["tpr_high"] = np.quantile(boots, [0.5 - level / 2.0, 0.5 + level / 2.0], axis=0)
    return out
