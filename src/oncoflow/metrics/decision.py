"""Decision-curve analysis (Vickers & Elkin 2006): net benefit of acting on a model's predicted
probabilities, over a range of threshold probabilities, against treating everyone or no one.

At threshold probability p_t a patient is treated when ``probability >= p_t`` (as R's dcurves):

    net benefit = TP / n - FP / n * p_t / (1 - p_t)
    treat all   = prevalence - (1 - prevalence) * p_t / (1 - p_t)
    treat none  = 0

The weight p_t / (1 - p_t) is the harm of an unnecessary treatment relative to the benefit of a
necessary one that a clinician choosing p_t implies. A decision curve needs probabilities,
not arbitrary scores (the threshold is read as a risk).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from ._validation import check_inputs

__all__ = ["decision_curve", "threshold_grid"]


def threshold_grid(start: float, stop: float, step: float) -> NDArray[np.float64]:
    """start, start + step, ..., stop (inclusive when stop is on the grid), rounded to 10 digits
    so that 0.05 + 0.01 * k prints as the decimal it stands for."""
    start, stop, step = float(start), float(stop), float(step)
    if not (0.0 <= start < 1.0 and 0.0 < stop < 1.0):
        raise ValueError(f"threshold range must lie in [0, 1), got [{start}, {stop}]")
    if stop < start:
        raise ValueError(f"threshold range is empty: start {start} > stop {stop}")
    if not step > 0:
        raise ValueError(f"threshold step must be > 0, got {step}")
    k = int(np.floor((stop - start) / step + 1e-9))
    return np.round(start + step * np.arange(k + 1), 10)


def decision_curve(y_true: ArrayLike, y_prob: ArrayLike, thresholds: ArrayLike) -> pd.DataFrame:
    """Net benefit of the model and of treat-all / treat-none at each threshold probability.

    Returns a DataFrame with columns threshold, net_benefit, treat_all, treat_none, tp, fp, n.
    Raises ValueError for probabilities outside [0, 1] and thresholds outside [0, 1). A single
    class is allowed (net benefit is defined; with no positives it is <= 0).
    """
    y, (p,) = check_inputs(y_true, y_prob)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("decision curves need probabilities in [0, 1]; got scores outside it")
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError("thresholds must be a non-empty 1-D array")
    if np.isnan(t).any() or (t < 0).any() or (t >= 1).any():
        raise ValueError("threshold probabilities must lie in [0, 1) (at 1 the harm weight "
                         "p_t / (1 - p_t) is infinite)")
    n = y.size
    treat = p[None, :] >= t[:, None]  # (thresholds, patients)
    tp = (treat & y[None, :]).sum(axis=1)
    fp = (treat & ~y[None, :]).sum(axis=1)
    odds = t / (1.0 - t)
    prevalence = y.mean()
    return pd.DataFrame({
        "threshold": t,
        "net_benefit": tp / n - fp / n * odds,
        "treat_all": prevalence - (1.0 - prevalence) * odds,
        "treat_none": 0.0,
        "tp": tp,
        "fp": fp,
        "n": n,
    })
