"""Conformal prediction sets for a binary outcome: per patient, the classes a model cannot rule out
at a configured error rate (``evaluate.prediction_sets``).

Split conformal prediction (Vovk, Gammerman & Shafer 2005; Angelopoulos & Bates 2021, "A gentle
introduction to conformal prediction", section 1) with the LAC score: a patient's nonconformity
with class k is ``1 - p(k)``, p(1) the risk and p(0) = 1 - risk. On n calibration patients the
threshold q is the ceil((n + 1)(1 - error_rate))-th smallest of their true-class scores (infinite
when that exceeds n: every class is kept), and a new patient's set holds every class whose score is
at most q. If calibration and new patients are exchangeable, the set holds the true class with
probability at least 1 - error_rate (marginal coverage, over patients and calibration draws;
Vovk et al. 2005, Theorem 2.2); nothing is guaranteed for one patient, one site or one class.

``by_class`` (Mondrian, label-conditional conformal; Vovk et al. 2005, section 4.5; Löfström et al.
2015): a threshold per class from the calibration patients of that class, so the guarantee holds
within each class, which the marginal one does not when classes are imbalanced (a set of
{majority class} for everyone covers 1 - minority share). Its sets depend only on the rank of the
risk among each class's calibration risks, so a monotone recalibration map (oncoflow.metrics.
recalibration) fitted on the same patients does not change them.

Sets: ``positive``, ``negative``, ``uncertain`` (both classes) or ``empty`` (neither: the patient's
risk is less typical of either class than nearly all calibration patients of it; it counts as not
covered). Cross-checked against crepes' conformal p-values (tests/test_conformal.py).

Which patients calibrate (:func:`add_prediction_sets`): a fold's inner-validation rows, the ones its
recalibration uses, and only for models whose validation patients selected nothing (recalibration
method ``logistic``: cross-fitted baseline, radiomics and clinical models; CNNs and their mean
fusion with ``train.selection: nested``, whose validation rows are inner out-of-fold scores). The
sets are made for the fold's test and external rows; the test patients' labels never enter their
own thresholds. With nested selection the calibration scores come from single inner models and
the test scores from their mean logit (``train.nested_model: ensemble``) or from a refitted model
(``refit``), so calibration and test scores are exchangeable only as far as those models agree (cross-conformal in spirit, without its proof): the measured coverage in
tables/prediction_sets.tsv is what a reader should trust.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from oncoflow.metrics.classification import wilson_interval

#: The sets a patient can get (column ``prediction_set``).
SETS = ("negative", "positive", "uncertain", "empty")
#: Recalibration method of the models whose inner-validation patients selected nothing
#: (oncoflow.metrics.recalibration): the only models whose validation rows may calibrate sets.
CALIBRATING_METHOD = "logistic"
#: Columns of tables/prediction_sets.tsv.
COVERAGE_COLUMNS = ["model", "cohort", "site", "n", "coverage", "coverage_ci_low", "coverage_ci_high",
                    "coverage_negative", "coverage_positive", "uncertain", "empty", "negative", "positive",
                    "target", "note"]


@dataclass(frozen=True)
class Thresholds:
    """A fold's score thresholds: class k is in a patient's set when its score 1 - p(k) <= q_k."""

    negative: float
    positive: float


def conformal_quantile(scores: np.ndarray, error_rate: float) -> float:
    """The ceil((n + 1)(1 - error_rate))-th smallest score (inf when that exceeds n, or n = 0)."""
    scores = np.sort(np.asarray(scores, dtype=float))
    k = math.ceil((scores.size + 1) * (1 - error_rate) - 1e-12)
    return float(scores[k - 1]) if k <= scores.size else math.inf


def min_calibration(error_rate: float) -> int:
    """The fewest calibration patients (of a class, by class) whose threshold is finite at
    ``error_rate``: below it every set holds that class (ceil((n + 1)(1 - a)) > n)."""
    return math.ceil((1 - error_rate) / error_rate - 1e-12)


def fit_thresholds(y: np.ndarray, risk: np.ndarray, error_rate: float, *, by_class: bool = True) -> Thresholds:
    """Thresholds from calibration patients' labels ``y`` (0/1) and risks."""
    y = np.asarray(y).astype(int)
    risk = np.asarray(risk, dtype=float)
    score = np.where(y == 1, 1 - risk, risk)  # 1 - p(true class)
    if not by_class:
        q = conformal_quantile(score, error_rate)
        return Thresholds(q, q)
    return Thresholds(conformal_quantile(score[y == 0], error_rate), conformal_quantile(score[y == 1], error_rate))


def label_sets(neg: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """One of :data:`SETS` from whether each set holds the negative / the positive class."""
    return np.select([neg & pos, pos, neg], ["uncertain", "positive", "negative"], "empty").astype(object)


def prediction_sets(risk: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """One of :data:`SETS` per risk."""
    risk = np.asarray(risk, dtype=float)
    return label_sets(risk <= thresholds.negative, 1 - risk <= thresholds.positive)


def majority_sets(risk: pd.Series, negative: pd.Series, positive: pd.Series, by: list[pd.Series]) -> pd.Series:
    """The set of each group of rows (a new patient scored by every fold model): the classes that
    more than half of the fold models' sets hold (majority vote: coverage at least 1 - 2 error_rate
    when each fold's sets cover 1 - error_rate; Gasparin & Ramdas 2024, arXiv:2401.09379). ``negative``
    / ``positive``: each row's fold thresholds (NaN: the model has none -> "")."""
    votes = pd.DataFrame({"neg": risk <= negative, "pos": 1 - risk <= positive, "none": negative.isna()})
    share = votes.groupby(by, sort=False).mean()
    sets = pd.Series(label_sets(share["neg"].to_numpy() > 0.5, share["pos"].to_numpy() > 0.5), index=share.index)
    return sets.where(share["none"] == 0, "")


def covers(sets: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each set holds the label y (0/1)."""
    sets = np.asarray(sets, dtype=object)
    y = np.asarray(y).astype(int)
    return (sets == "uncertain") | ((sets == "positive") & (y == 1)) | ((sets == "negative") & (y == 0))


def fold_set_thresholds(part: pd.DataFrame, method: str, error_rate: float, *,
                        by_class: bool = True) -> Thresholds | None:
    """One (model, fold)'s thresholds from its inner-validation rows' ``risk``; None when the model's
    recalibration ``method`` is not :data:`CALIBRATING_METHOD` or the fold has no validation rows.
    The one rule for which models get sets (evaluation and the bundle, oncoflow.predict.bundle)."""
    val = part[part["role"] == "val"]
    if method != CALIBRATING_METHOD or val.empty:
        return None
    return fit_thresholds(val["y_true"].to_numpy(), val["risk"].to_numpy(dtype=float), error_rate, by_class=by_class)


def add_prediction_sets(pooled: pd.DataFrame, error_rate: float, *, by_class: bool = True,
                        methods: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, dict[tuple[str, int], Thresholds]]:
    """``pooled`` (with ``risk``) plus ``prediction_set`` on each fold's test and external rows, from
    thresholds fitted on that fold's inner-validation rows, for the models whose method in
    ``methods`` (model -> recalibration method) is :data:`CALIBRATING_METHOD`; empty elsewhere.
    Returns (pooled, (model, fold) -> thresholds)."""
    methods = methods or {}
    sets = pd.Series("", index=pooled.index, dtype=object)
    fitted: dict[tuple[str, int], Thresholds] = {}
    for (model, fold), part in pooled.groupby(["model", "fold"], sort=False):
        t = fold_set_thresholds(part, methods.get(model, CALIBRATING_METHOD), error_rate, by_class=by_class)
        if t is None:
            continue
        fitted[(str(model), int(fold))] = t
        target = part[part["role"].isin(["test", "external"])]
        sets.loc[target.index] = prediction_sets(target["risk"].to_numpy(dtype=float), t)
    return pooled.assign(prediction_set=sets), fitted


def _summary(sets: np.ndarray, y: np.ndarray, weight: np.ndarray, level: float) -> dict[str, Any]:
    """Coverage (Wilson CI on the weighted count, rounded) and the shares of each set; ``weight``:
    1 per patient (an external patient scored by k fold models: 1/k per row)."""
    n = float(weight.sum())
    hit = covers(sets, y)
    k = float((weight * hit).sum())
    low, high = wilson_interval(round(k), round(n), level)
    row: dict[str, Any] = {"n": round(n), "coverage": k / n if n else np.nan, "coverage_ci_low": low,
                           "coverage_ci_high": high}
    for cls, name in ((0, "coverage_negative"), (1, "coverage_positive")):
        mask = y == cls
        row[name] = float((weight * hit)[mask].sum() / weight[mask].sum()) if mask.any() else np.nan
    for s in ("uncertain", "empty", "negative", "positive"):
        row[s] = float((weight * (sets == s)).sum() / n) if n else np.nan
    return row


def _cohorts(pooled: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(model, cohort, rows with a set): cv = the test rows of repeat 0; external cohorts (per
    ``cohort`` column when there are several) = every fold model's row."""
    if "repeat" in pooled.columns:
        pooled = pooled[pooled["repeat"] == 0]
    has = pooled[pooled["prediction_set"].fillna("").astype(str) != ""]
    for model, part in has.groupby("model", sort=False):
        yield str(model), "cv", part[part["role"] == "test"]
        ext = part[part["role"] == "external"]
        names = ext["cohort"] if "cohort" in ext.columns else pd.Series("", index=ext.index)
        for name, rows in ext.groupby(names, sort=True):
            yield str(model), f"external:{name}" if name else "external", rows


def _small_folds(pooled: pd.DataFrame, model: str, error_rate: float, by_class: bool) -> str:
    """A note naming the folds of ``model`` whose calibration patients (of a class) are too few for
    a finite threshold."""
    need = min_calibration(error_rate)
    val = pooled[(pooled["model"] == model) & (pooled["role"] == "val")]
    counts = val.groupby("fold")["y_true"].agg(lambda y: min((y == 0).sum(), (y == 1).sum()) if by_class else y.size)
    small = [str(f) for f, n in counts.items() if n < need]
    if not small:
        return ""
    which = f"all {len(small)} folds" if len(small) == len(counts) else f"fold(s) {', '.join(small)}"
    return (f"{which}: fewer than {need} calibration patients{' of a class' if by_class else ''} "
            f"(the minimum at error rate {error_rate:g}): every set there holds {'that class' if by_class else 'both'}")


def coverage_table(pooled: pd.DataFrame, error_rate: float, *, by_class: bool = True,
                   level: float = 0.95) -> pd.DataFrame:
    """tables/prediction_sets.tsv: per model and cohort (and per site where ``site`` exists) the
    empirical coverage with its Wilson CI, per-class coverage and the share of each set; ``note``
    names folds too small for a finite threshold (:func:`min_calibration`)."""
    rows = []
    for model, cohort, rows_ in _cohorts(pooled):
        if rows_.empty:
            continue
        weight = 1.0 / rows_.groupby("subject")["subject"].transform("size").to_numpy(dtype=float)
        groups = [("all", rows_)]
        if "site" in rows_.columns and cohort == "cv":
            groups += [(str(s), g) for s, g in rows_.groupby("site", sort=True)]
        for site, g in groups:
            w = weight[rows_.index.get_indexer(g.index)]
            notes = [_small_folds(pooled, model, error_rate, by_class)]
            if cohort != "cv":
                notes.append("each external patient once: the mean over the fold models' sets")
            note = "; ".join(n for n in notes if n)
            rows.append({"model": model, "cohort": cohort, "site": site,
                         **_summary(g["prediction_set"].to_numpy(dtype=object), g["y_true"].to_numpy().astype(int),
                                    w, level),
                         "target": 1 - error_rate, "note": note})
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)
