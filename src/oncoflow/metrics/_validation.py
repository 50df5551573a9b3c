"""Input checks shared by the metric functions (private)."""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray


class MetricWarning(UserWarning):
    """A metric is undefined (returned as NaN) or degenerate for this input."""


def as_labels(y_true: ArrayLike) -> NDArray[np.bool_]:
    """Return y_true as a 1-D boolean array; labels must be 0/1 (or bool)."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y.shape}")
    if y.size == 0:
        raise ValueError("y_true is empty")
    if y.dtype == bool:
        return y
    if y.dtype == object:  # e.g. a pandas object column holding 0/1
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if not np.issubdtype(y.dtype, np.number):
        bad = sorted({str(v) for v in y.tolist()} - {"0", "1"})[:5]
        raise ValueError(f"y_true labels must be 0/1, got non-numeric values {bad}")
    ok = (y == 0) | (y == 1)
    if not ok.all():
        bad = np.unique(y[~ok])[:5].tolist()
        raise ValueError(f"y_true labels must be 0/1, got {bad} ({int((~ok).sum())} bad values)")
    return y == 1


def as_scores(y_score: ArrayLike, n: int, name: str = "y_score") -> NDArray[np.float64]:
    """Return y_score as a 1-D float array of length n without NaN (+-inf is allowed)."""
    try:
        s = np.asarray(y_score, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numeric: {e}") from None
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {s.shape}")
    if s.size != n:
        raise ValueError(f"length mismatch: y_true has {n} values, {name} has {s.size}")
    nan = np.isnan(s)
    if nan.any():
        idx = np.flatnonzero(nan)
        raise ValueError(f"{name} contains {idx.size} NaN value(s), first at index {idx[:5].tolist()}")
    return s


def check_inputs(y_true: ArrayLike, *scores: ArrayLike) -> tuple[NDArray[np.bool_], list[NDArray[np.float64]]]:
    y = as_labels(y_true)
    names = ["y_score"] if len(scores) == 1 else [f"score_{c}" for c in "ab"[: len(scores)]]
    return y, [as_scores(s, y.size, nm) for s, nm in zip(scores, names)]


def single_class_reason(y: NDArray[np.bool_]) -> str:
    """Why a two-class metric is undefined ('' when both classes are present)."""
    n_pos = int(y.sum())
    if n_pos == 0:
        return f"only negatives (n={y.size}): no positive cases"
    if n_pos == y.size:
        return f"only positives (n={y.size}): no negative cases"
    return ""


def check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def check_n_boot(n_boot: int) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")


def warn(reason: str) -> None:
    warnings.warn(reason, MetricWarning, stacklevel=3)
