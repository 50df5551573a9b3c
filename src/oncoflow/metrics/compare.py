"""Pairwise comparison of models' AUCs on the same patients (paired DeLong test) with a
multiple-comparison correction.

The DeLong test, the DeLong CI of the difference and the p-values reproduce pROC
(``roc.test(method = "delong", paired = TRUE)``; see :func:`oncoflow.metrics.delong_test`).
The corrections are written out here (statsmodels is not a dependency) and agree with
``statsmodels.stats.multitest.multipletests`` / R's ``p.adjust`` (tests/test_comparisons.py).
"""

from __future__ import annotations

from itertools import combinations
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from ._validation import as_labels, as_scores, check_level
from .roc import _auc, _delong_pair, _delong_test_reason, _z_p

__all__ = ["CORRECTIONS", "COMPARISON_COLUMNS", "adjust_pvalues", "compare_aucs"]

#: Multiple-comparison corrections: family-wise error (holm, bonferroni), false discovery rate
#: (fdr_bh: Benjamini-Hochberg), or none.
CORRECTIONS = ("holm", "bonferroni", "fdr_bh", "none")
COMPARISON_COLUMNS = ("model_a", "model_b", "n", "n_pos", "auc_a", "auc_b", "delta", "delta_ci_low",
                      "delta_ci_high", "z", "p", "p_adjusted", "correction", "note")
NAN = float("nan")


def adjust_pvalues(p: ArrayLike, method: str = "holm") -> NDArray[np.float64]:
    """p-values adjusted for multiple comparisons (R's ``p.adjust``).

    - ``bonferroni``: min(1, m p)
    - ``holm``: step-down, p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j))
    - ``fdr_bh``: Benjamini-Hochberg step-up, p_(i) -> min_{j >= i} min(1, m p_(j) / j)
    - ``none``: unchanged
    NaN p-values (undefined tests) are not part of the family (m counts the others) and stay NaN.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; choose from {CORRECTIONS}")
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p must be 1-D, got shape {p.shape}")
    ok = ~np.isnan(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise ValueError("p-values must lie in [0, 1]")
    out = p.copy()
    q = p[ok]
    m = q.size
    if m == 0 or method == "none":
        return out
    if method == "bonferroni":
        out[ok] = np.minimum(1.0, m * q)
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order]
    i = np.arange(1, m + 1)
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (m - i + 1) * ranked))
    else:  # fdr_bh
        adj = np.minimum.accumulate(np.minimum(1.0, (m / i) * ranked)[::-1])[::-1]  # as R: n / i * p
    back = np.empty(m)
    back[order] = adj
    out[ok] = back
    return out


def _compare_pair(y: NDArray[np.bool_], a: NDArray[np.float64], b: NDArray[np.float64],
                  level: float) -> dict[str, object]:
    row: dict[str, object] = {"n": int(y.size), "n_pos": int(y.sum())}
    if reason := _delong_test_reason(y):
        # the AUCs may still be defined (>= 1 case per class), the test is not
        both = 0 < y.sum() < y.size
        row.update(auc_a=_auc(y, a) if both else NAN, auc_b=_auc(y, b) if both else NAN)
        row.update(delta=float(row["auc_a"]) - float(row["auc_b"]), delta_ci_low=NAN,
                   delta_ci_high=NAN, z=NAN, p=NAN, note=reason)
        return row
    auc_a, auc_b, d, sd = _delong_pair(y, a, b)
    z, p = _z_p(d, sd)
    half = float(norm.ppf(0.5 + level / 2.0)) * sd
    note = ""
    if sd == 0:
        note = ("DeLong variance of the difference is 0 (identical rankings, constant scores or "
                "both models separate perfectly): "
                + ("z = 0, p = 1" if d == 0 else "z = +-inf, p = 0"))
    row.update(auc_a=auc_a, auc_b=auc_b, delta=d, delta_ci_low=max(d - half, -1.0),
               delta_ci_high=min(d + half, 1.0), z=z, p=p, note=note)
    return row


def compare_aucs(y_true: ArrayLike, scores: Mapping[str, ArrayLike], correction: str = "holm",
                 level: float = 0.95, pairs: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Paired DeLong test for every pair of models scored on the same patients.

    ``scores`` maps model name -> scores (same patients, same order as ``y_true``). ``pairs``
    defaults to every unordered pair, in the order of ``scores``. Per pair: AUCs, delta =
    auc_a - auc_b with its DeLong confidence interval (normal approximation, clipped to
    [-1, 1]), z and two-sided p (as pROC), and p adjusted over the pairs by ``correction``.
    Undefined tests (fewer than 2 patients of a class) have NaN z/p and a ``note``; they are left
    out of the correction's family.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; choose from {CORRECTIONS}")
    check_level(level)
    y = as_labels(y_true)
    arrays = {name: as_scores(s, y.size, f"scores[{name!r}]") for name, s in scores.items()}
    if pairs is None:
        pairs = list(combinations(arrays, 2))
    rows = []
    for a, b in pairs:
        for name in (a, b):
            if name not in arrays:
                raise ValueError(f"pair ({a!r}, {b!r}): no scores for model {name!r}")
        rows.append({"model_a": a, "model_b": b, **_compare_pair(y, arrays[a], arrays[b], level)})
    out = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if c not in ("p_adjusted", "correction")])
    out["p_adjusted"] = adjust_pvalues(out["p"].to_numpy(dtype=float), correction)
    out["correction"] = correction
    return out[list(COMPARISON_COLUMNS)]
