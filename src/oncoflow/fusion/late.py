"""Late fusion of per-modality models within one fold.

``mean`` averages the models' probabilities and fits nothing. ``lr`` and ``svm`` are stacking
models fitted on the fold's inner-validation patients only (training patients whose predictions
came from models that never trained on them); test and external patients are only predicted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

METHODS = ("mean", "lr", "svm")
FIT_ROLE = "val"


class FusionError(ValueError):
    pass


def wide_predictions(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per subject, one probability column per model; checks the models agree on
    subjects, roles and labels."""
    keys = ["subject", "fold", "role", "y_true"]
    wide = None
    for frame in frames:
        model = str(frame["model"].iloc[0])
        part = frame[keys + ["probability"]].rename(columns={"probability": model})
        wide = part if wide is None else wide.merge(part, on=keys, how="outer", validate="1:1")
    assert wide is not None
    if wide.isna().any().any():
        raise FusionError("models disagree on the subjects, roles or labels of this fold")
    return wide.sort_values("subject").reset_index(drop=True)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fuse(frames: list[pd.DataFrame], method: str, *, seed: int = 0) -> pd.DataFrame:
    if method not in METHODS:
        raise FusionError(f"unknown fusion method {method!r}; choose from {METHODS}")
    wide = wide_predictions(frames)
    models = [c for c in wide.columns if c not in ("subject", "fold", "role", "y_true")]
    probs = wide[models].to_numpy()
    if method == "mean":
        fused = probs.mean(axis=1)
    else:
        fit = wide["role"] == FIT_ROLE
        y_fit = wide.loc[fit, "y_true"].to_numpy()
        if len(np.unique(y_fit)) < 2:
            raise FusionError(f"fusion_{method}: the inner-validation patients of fold "
                              f"{wide['fold'].iloc[0]} hold a single class; raise cv.val_fraction")
        if method == "lr":
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
        else:
            clf = make_pipeline(StandardScaler(), SVC(kernel="linear", probability=True,
                                                      random_state=seed))
        clf.fit(logit(probs[fit.to_numpy()]), y_fit)
        fused = clf.predict_proba(logit(probs))[:, 1]
    out = wide[["subject", "fold", "role", "y_true"]].copy()
    out.insert(2, "model", f"fusion_{method}")
    out["probability"] = fused
    return out
