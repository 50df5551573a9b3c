"""A reference the metric tests hold results against, independent of oncoflow.metrics."""

from __future__ import annotations

import numpy as np


def pairwise_auc(y: np.ndarray, score: np.ndarray) -> float:
    """AUC by counting (positive, negative) pairs: 1 for the positive scored higher, 1/2 for a tie.
    ``y``: 1 / True for the positive class."""
    positive = np.asarray(y).astype(bool)
    pos, neg = score[positive], score[~positive]
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())
