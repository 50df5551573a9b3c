"""Per-fold feature selection and the LASSO rad-score, fitted on the fold's training patients only.

Steps, every one fitted on the rows passed as training data (``fit_radscore``) and only applied to
the others:

1. median imputation of a feature value MIRP could not compute (NaN), per feature;
2. variance filter: features whose variance after min-max scaling to [0, 1] is at most
   ``variance_threshold`` (near-constant) are dropped;
3. standardisation (mean 0, sd 1);
4. correlation filter: features are ranked by univariate relevance (|AUC - 0.5|, ties by name) and
   one whose |Pearson r| with a better-ranked kept feature exceeds ``correlation_threshold`` is
   dropped;
5. L1-penalised (LASSO) logistic regression; C is chosen from ``c_grid`` by an inner stratified
   ``inner_folds``-fold cross-validation AUC over the training patients (ties: the smaller C, the
   sparser model).

The rad-score is the model's linear predictor (log-odds); its probability is the sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold


class SelectionError(ValueError):
    pass


@dataclass(frozen=True)
class SelectionSettings:
    variance_threshold: float = 0.001
    correlation_threshold: float = 0.9
    c_grid: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    inner_folds: int = 5
    seed: int = 42

    @classmethod
    def from_config(cls, selection: dict, seed: int) -> SelectionSettings:
        return cls(variance_threshold=float(selection.get("variance_threshold", 0.001)),
                   correlation_threshold=float(selection.get("correlation_threshold", 0.9)),
                   c_grid=tuple(float(c) for c in selection.get("c_grid", cls.c_grid)),
                   inner_folds=int(selection.get("inner_folds", 5)), seed=seed)


@dataclass
class RadScore:
    """A fitted selection + LASSO model (all parameters from training patients)."""
    features: list[str]                 # input columns, in order
    median: np.ndarray
    kept_variance: list[str]
    mean: np.ndarray                    # of kept_variance
    sd: np.ndarray
    kept_correlation: list[str]
    c: float
    inner_auc: dict[float, float]
    model: LogisticRegression
    dropped: dict[str, str] = field(default_factory=dict)  # feature -> step that dropped it

    def _standardised(self, x: pd.DataFrame) -> np.ndarray:
        values = x[self.features].to_numpy(dtype=float)
        values = np.where(np.isnan(values), self.median, values)
        index = [self.features.index(f) for f in self.kept_variance]
        z = (values[:, index] - self.mean) / self.sd
        keep = [self.kept_variance.index(f) for f in self.kept_correlation]
        return z[:, keep]

    def score(self, x: pd.DataFrame) -> np.ndarray:
        """Rad-score (log-odds) of each row."""
        return self.model.decision_function(self._standardised(x))

    def probability(self, x: pd.DataFrame) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.score(x)))

    def coefficients(self) -> pd.DataFrame:
        """Every input feature with the step that dropped it or its LASSO coefficient."""
        coef = dict(zip(self.kept_correlation, self.model.coef_[0]))
        rows = []
        for f in self.features:
            if f in self.dropped:
                status, value = self.dropped[f], 0.0
            else:
                value = float(coef[f])
                status = "selected" if value != 0 else "lasso"
            i = self.kept_variance.index(f) if f in self.kept_variance else None
            rows.append({"term": f, "status": status, "coefficient": value,
                         "train_mean": float(self.mean[i]) if i is not None else np.nan,
                         "train_sd": float(self.sd[i]) if i is not None else np.nan})
        rows.append({"term": "(intercept)", "status": "selected", "coefficient": float(self.model.intercept_[0]),
                     "train_mean": np.nan, "train_sd": np.nan})
        rows.append({"term": "(C)", "status": "inner-cv", "coefficient": self.c, "train_mean": np.nan,
                     "train_sd": np.nan})
        return pd.DataFrame(rows)

    def selected(self) -> list[str]:
        return [f for f, c in zip(self.kept_correlation, self.model.coef_[0]) if c != 0]

    def export(self) -> dict:
        """What scoring needs, as numbers (oncoflow.radiomics.saved): each feature with a nonzero
        LASSO coefficient, its training median (imputation), mean and sd, and the intercept."""
        coef = dict(zip(self.kept_correlation, self.model.coef_[0]))
        rows = []
        for f in self.selected():
            i = self.kept_variance.index(f)
            rows.append({"name": f, "median": float(self.median[self.features.index(f)]), "mean": float(self.mean[i]),
                         "sd": float(self.sd[i]), "coefficient": float(coef[f])})
        return {"features": rows, "intercept": float(self.model.intercept_[0]), "c": self.c}


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else 0.5


def _lasso(c: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, l1_ratio=1.0, solver="liblinear", random_state=seed, max_iter=1000)


def _filters(x: np.ndarray, y: np.ndarray, names: list[str], s: SelectionSettings):
    median = np.nanmedian(x, axis=0)
    median = np.where(np.isnan(median), 0.0, median)  # a feature NaN for every training patient
    x = np.where(np.isnan(x), median, x)
    dropped: dict[str, str] = {}
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    variance = ((x - lo) / span).var(axis=0)
    keep_v = [i for i in range(len(names)) if variance[i] > s.variance_threshold]
    for i in set(range(len(names))) - set(keep_v):
        dropped[names[i]] = "variance"
    if not keep_v:
        raise SelectionError(f"every feature has a variance <= radiomics.selection.variance_threshold "
                             f"({s.variance_threshold}) over the {len(y)} training patients")
    mean, sd = x[:, keep_v].mean(axis=0), x[:, keep_v].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x[:, keep_v] - mean) / sd
    relevance = np.array([abs(_auc(y, z[:, j]) - 0.5) for j in range(z.shape[1])])
    order = sorted(range(z.shape[1]), key=lambda j: (-relevance[j], names[keep_v[j]]))
    corr = np.corrcoef(z, rowvar=False) if z.shape[1] > 1 else np.ones((1, 1))
    corr = np.nan_to_num(corr)
    kept: list[int] = []
    for j in order:
        if all(abs(corr[j, k]) <= s.correlation_threshold for k in kept):
            kept.append(j)
        else:
            dropped[names[keep_v[j]]] = "correlation"
    kept.sort()
    return median, keep_v, mean, sd, kept, z[:, kept], dropped


def fit_radscore(x: pd.DataFrame, y: np.ndarray, s: SelectionSettings) -> RadScore:
    """Fit every step on these rows (the fold's training patients)."""
    names = list(x.columns)
    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        raise SelectionError(f"the {len(y)} training patients hold a single class")
    median, keep_v, mean, sd, kept, z, dropped = _filters(x.to_numpy(dtype=float), y, names, s)
    n_min = int(np.bincount(y, minlength=2).min())
    k = min(s.inner_folds, n_min)
    if k < 2:
        raise SelectionError(f"the smaller class has {n_min} training patient(s): too few for the inner "
                             "cross-validation that chooses the LASSO C")
    inner = StratifiedKFold(n_splits=k, shuffle=True, random_state=s.seed)
    values = x.to_numpy(dtype=float)
    # the filters and the scaler are refitted inside each inner fold as well (they do not depend on C)
    prepared = []
    for tr, te in inner.split(values, y):
        m, kv, mu, sdv, kp, zt, _ = _filters(values[tr], y[tr], names, s)
        xe = np.where(np.isnan(values[te]), m, values[te])
        prepared.append((tr, te, zt, ((xe[:, kv] - mu) / sdv)[:, kp]))
    inner_auc: dict[float, float] = {}
    for c in sorted(s.c_grid):
        scores = np.zeros(len(y))
        for tr, te, zt, ze in prepared:
            scores[te] = _lasso(c, s.seed).fit(zt, y[tr]).decision_function(ze)
        inner_auc[c] = _auc(y, scores)
    best = max(inner_auc.values())
    c = min(c for c, a in inner_auc.items() if a >= best - 1e-12)
    model = _lasso(c, s.seed).fit(z, y)
    return RadScore(features=names, median=median, kept_variance=[names[i] for i in keep_v], mean=mean, sd=sd,
                    kept_correlation=[names[keep_v[j]] for j in kept], c=c, inner_auc=inner_auc, model=model,
                    dropped=dropped)


def out_of_fold_scores(x: pd.DataFrame, y: np.ndarray, s: SelectionSettings, c: float) -> np.ndarray:
    """Rad-scores of the training patients, each from a rad-score fitted without that patient
    (inner stratified k-fold; filters, scaler and LASSO with the chosen ``c`` refitted each time):
    what the combined model is fitted on, so that it does not learn the in-sample optimism of the
    rad-score. Only training patients are involved."""
    y = np.asarray(y, dtype=int)
    names = list(x.columns)
    values = x.to_numpy(dtype=float)
    k = min(s.inner_folds, int(np.bincount(y, minlength=2).min()))
    if k < 2:
        raise SelectionError("the smaller class has fewer than 2 training patients: no out-of-fold rad-score")
    scores = np.zeros(len(y))
    for tr, te in StratifiedKFold(n_splits=k, shuffle=True, random_state=s.seed + 1).split(values, y):
        m, kv, mu, sdv, kp, zt, _ = _filters(values[tr], y[tr], names, s)
        model = _lasso(c, s.seed).fit(zt, y[tr])
        xe = np.where(np.isnan(values[te]), m, values[te])
        scores[te] = model.decision_function(((xe[:, kv] - mu) / sdv)[:, kp])
    return scores
