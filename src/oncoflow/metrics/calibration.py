"""Calibration of predicted probabilities: a binned reliability curve with Wilson intervals.

(The Brier score is in :func:`oncoflow.metrics.summarize`.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import norm

from ._validation import check_inputs, check_level

__all__ = ["calibration_curve"]

STRATEGIES = ("uniform", "quantile")


def _wilson(k: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes out of n (n > 0)."""
    z = float(norm.ppf(0.5 + level / 2.0))
    phat = k / n
    den = 1.0 + z * z / n
    centre = (phat + z * z / (2 * n)) / den
    half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / den
    low = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))  # exact at the ends, where
    high = np.where(k == n, 1.0, np.clip(centre + half, 0.0, 1.0))  # rounding could cross phat
    return low, high


def calibration_curve(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 10,
                      strategy: str = "uniform", level: float = 0.95) -> pd.DataFrame:
    """Observed fraction of positives against mean predicted probability, per bin.

    Bins as sklearn's ``calibration_curve`` (same edges and assignment, so the same points):
    ``uniform`` splits [0, 1] into ``n_bins`` equal widths, ``quantile`` puts the edges at the
    predictions' quantiles (about equal counts; tied predictions can merge bins). A prediction
    on an inner edge goes to the lower bin. Empty bins are left out.

    Returns a DataFrame with one row per non-empty bin: bin (0-based), bin_low, bin_high, n,
    n_pos, mean_predicted, observed, observed_ci_low, observed_ci_high (Wilson score interval
    at ``level``). Probabilities outside [0, 1] raise ValueError.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    check_level(level)
    y, (p,) = check_inputs(y_true, y_prob)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("calibration needs probabilities in [0, 1]; got scores outside it")
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    total = np.bincount(ids, minlength=n_bins)
    pos = np.bincount(ids, weights=y.astype(np.float64), minlength=n_bins)
    sums = np.bincount(ids, weights=p, minlength=n_bins)
    keep = np.flatnonzero(total > 0)
    k, n = pos[keep], total[keep].astype(np.float64)
    low, high = _wilson(k, n, level)
    return pd.DataFrame({
        "bin": keep,
        "bin_low": edges[keep],
        "bin_high": edges[keep + 1],
        "n": total[keep],
        "n_pos": k.astype(np.int64),
        "mean_predicted": sums[keep] / n,
        "observed": k / n,
        "observed_ci_low": low,
        "observed_ci_high": high,
    })
