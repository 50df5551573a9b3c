"""The per-fold baseline model: an L2-penalised logistic regression on the baseline features.

Standardisation and the penalty (C chosen by stratified inner cross-validation over
:data:`C_GRID`, scored by log-loss) are fitted on the fold's ``train`` patients only, exactly
like a CNN's weights; ``val`` (thresholds, recalibration), ``test`` and ``external`` patients are
only predicted. The predictions have the columns every model's have, so evaluation, comparisons
and figures treat ``baseline`` like any other model.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from oncoflow.harmonisation import HarmonisationSettings, harmonise, site_series

NAME = "baseline"
FIT_ROLE = "train"
C_GRID = np.logspace(-3, 2, 11)
PREDICTION_COLUMNS = ["subject", "fold", "model", "role", "y_true", "probability"]


class BaselineModelError(ValueError):
    pass


def fit_baseline_fold(features: pd.DataFrame, splits: pd.DataFrame, fold: int, *, seed: int = 0,
                      harmonisation: HarmonisationSettings | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, coefficients) of the baseline in one fold. ``features``: one row per subject
    (:func:`oncoflow.baseline.features.subject_features`); ``splits``: folds/splits.tsv (with its
    ``site`` column when ``harmonisation`` is on: ComBat fitted on the train patients only)."""
    part = splits[splits["fold"] == fold].set_index("subject")
    if part.empty:
        raise BaselineModelError(f"no fold {fold} in the splits table")
    feats = features.set_index("subject")
    missing = [s for s in part.index if s not in feats.index]
    if missing:
        raise BaselineModelError(f"baseline fold {fold}: subject {missing[0]!r} has no baseline features "
                                 f"({len(missing)} missing)")
    x_all = feats.loc[part.index].astype(float)
    train = (part["role"] == FIT_ROLE).to_numpy()
    if harmonisation is not None:
        x_all, combat = harmonise(x_all, site_series(part), list(part.index[train]), harmonisation)
        print(f"baseline fold {fold}: ComBat on {len(combat.features)} features, fitted on training sites "
              f"{', '.join(combat.sites)}", file=sys.stderr)
    y = part["label"].astype(int).to_numpy()
    x_train = x_all[train]
    mean, sd = x_train.mean(), x_train.std(ddof=0).replace(0.0, 1.0)
    z_all = ((x_all - mean) / sd).to_numpy()
    n_min = int(np.bincount(y[train], minlength=2).min())
    if n_min < 1:
        raise BaselineModelError(f"baseline fold {fold}: the training patients hold no patient of one class")
    if n_min < 2:  # too few for an inner split: the default penalty, said in the log and coefficients
        c = 1.0
        print(f"baseline fold {fold}: {n_min} training patient of the smaller class, too few for the inner "
              "cross-validation; C fixed at 1.0", file=sys.stderr)
    else:
        search = LogisticRegressionCV(Cs=C_GRID, cv=StratifiedKFold(min(5, n_min), shuffle=True,
                                                                    random_state=seed + fold),
                                      l1_ratios=(0.0,), use_legacy_attributes=False, scoring="neg_log_loss",
                                      max_iter=2000).fit(z_all[train], y[train])
        c = float(np.ravel(search.C_)[0])
    model = LogisticRegression(C=c, max_iter=2000).fit(z_all[train], y[train])
    preds = pd.DataFrame({"subject": part.index, "fold": fold, "model": NAME, "role": part["role"].to_numpy(),
                          "y_true": y, "probability": model.predict_proba(z_all)[:, 1]})
    coefs = pd.DataFrame({"fold": fold, "model": NAME, "n_train": int(train.sum()), "C": c,
                          "term": [*x_all.columns, "(intercept)"],
                          "coefficient": [*model.coef_[0], model.intercept_[0]],
                          "train_mean": [*mean, np.nan], "train_sd": [*sd, np.nan]})
    return preds[PREDICTION_COLUMNS], coefs
