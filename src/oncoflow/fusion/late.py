"""Late fusion of per-modality models within one fold.

``mean`` averages the models' probabilities and fits nothing.

``lr`` and ``svm`` are stacking models. Within each cross-validation fold they are fitted on that
fold's **inner-validation patients** (role ``val``) only. Those patients belong to the fold's
training part, but the base CNNs never trained on them (they were held out for early stopping and
threshold choice), so their predictions are out of sample. The stacking model is therefore nested
inside the training fold: the fold's test patients and the external cohort are only predicted.
Their labels and scores never reach a fitted parameter (tests/test_fusion.py checks this).
Inputs are the base probabilities on the logit scale, standardised on the validation rows.
With ``train.selection: nested`` every non-test patient of the fold is a validation row (its CNN
scores are the inner out-of-fold scores of models that never trained on it), so the stacker and the
fused threshold are fitted on all the fold's training patients' cross-fitted scores instead of the
~25 % inner-validation set.

The validation patients also choose the fused model's threshold (Youden) and recalibration in
evaluation, so their own fused scores must not come from a stacker that was fitted on them: they are
**cross-fitted** by leave-one-out within the validation set. Each validation patient's fused score
comes from a stacker fitted on the other validation patients; test and external patients get the
stacker fitted on all of them. Leave-one-out rather than k-fold: the partition does not depend on
the labels (so no patient's label can reach its own score through a stratified split), and with
~20 validation patients it leaves the most patients to each fit. When a class has a single
validation patient, leaving it out leaves one class: that fold keeps in-sample scores and the note
says so.

- ``lr``: L2-regularised logistic regression (C = 1), which is a probability model by itself.
- ``svm``: a linear SVM (C = 1) whose decision values are turned into probabilities with Platt
  scaling (a sigmoid fitted by :class:`~sklearn.calibration.CalibratedClassifierCV`,
  ``method="sigmoid"``). ``SVC(probability=True)`` is deprecated since scikit-learn 1.9 and runs a
  hidden, randomised 5-fold split that breaks on small validation sets.

  * With at least :data:`PLATT_MIN_PER_CLASS` validation patients in each class, the sigmoid is
    fitted on **cross-validated** decision values of the validation patients (stratified k-fold,
    k = min(5, smaller class count), seeded). The SVM that makes the predictions is refitted on
    all validation patients (``ensemble=False``). libsvm's Platt scaling works the same way, and
    it avoids the over-confident slope of a sigmoid fitted to in-sample decision values.
  * With fewer, cross-validation would fit SVMs on one or two patients of a class. The sigmoid is
    then fitted on the SVM's own (in-sample) decision values of the same validation patients. The
    SVM is frozen first (:class:`~sklearn.frozen.FrozenEstimator`). Platt's target smoothing,
    (N+ + 1)/(N+ + 2) and 1/(N- + 2), keeps the sigmoid from saturating even when the validation
    patients are separable. The predictions then lean towards over-confidence; the fusion log says
    which path was taken.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

METHODS = ("mean", "lr", "svm")
FIT_ROLE = "val"
#: Smallest class count among the validation patients for a cross-validated Platt sigmoid.
PLATT_MIN_PER_CLASS = 3
PLATT_MAX_FOLDS = 5


class FusionError(ValueError):
    pass


def wide_predictions(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per subject, one probability column per model; checks the models agree on
    subjects, roles and labels."""
    keys = ["subject", "fold", "role", "y_true"]
    wide = None
    for frame in frames:
        model = str(frame["model"].iloc[0])
        bad = frame["probability"].isna() | ~np.isfinite(frame["probability"].astype(float))
        if bad.any():
            raise FusionError(f"{model}: probability is missing or not finite for subject(s) "
                              f"{frame.loc[bad, 'subject'].head(5).tolist()}")
        part = frame[keys + ["probability"]].rename(columns={"probability": model})
        wide = part if wide is None else wide.merge(part, on=keys, how="outer", validate="1:1")
    assert wide is not None
    if wide.isna().any().any():
        raise FusionError("models disagree on the subjects, roles or labels of this fold")
    return wide.sort_values("subject").reset_index(drop=True)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def calibrated_svm(y_fit: np.ndarray, seed: int) -> tuple[CalibratedClassifierCV | None, str]:
    """(estimator, note) for a Platt-scaled linear SVM on these validation labels.

    Returns ``(CalibratedClassifierCV, note)`` for the cross-validated sigmoid, or ``(None, note)``
    when a class has fewer than :data:`PLATT_MIN_PER_CLASS` patients. In that case
    :func:`fit_svm` fits the sigmoid in-sample.
    """
    n_min = int(np.bincount(y_fit.astype(int), minlength=2).min())
    if n_min >= PLATT_MIN_PER_CLASS:
        k = min(PLATT_MAX_FOLDS, n_min)
        cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        svm = make_pipeline(StandardScaler(), SVC(kernel="linear", C=1.0))
        return (CalibratedClassifierCV(svm, method="sigmoid", cv=cv, ensemble=False),
                f"Platt sigmoid on {k}-fold cross-validated SVM decision values of "
                f"{y_fit.size} validation patients")
    return None, (f"Platt sigmoid on in-sample SVM decision values: the smaller class has "
                  f"{n_min} of {y_fit.size} validation patients (< {PLATT_MIN_PER_CLASS} for "
                  f"cross-validation); probabilities may be over-confident")


def fit_svm(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[object, str]:
    clf, note = calibrated_svm(y, seed)
    if clf is not None:
        return clf.fit(x, y), note
    svm = make_pipeline(StandardScaler(), SVC(kernel="linear", C=1.0)).fit(x, y)
    every = np.arange(y.size)  # one "split" whose test part is every patient: in-sample values
    platt = CalibratedClassifierCV(FrozenEstimator(svm), method="sigmoid", cv=[(every, every)])
    return platt.fit(x, y), note


def fit_stacker(method: str, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[object, str]:
    """The lr or svm stacking model fitted on these rows, and how."""
    if method == "lr":
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(x, y)
        return clf, f"logistic regression on {y.size} validation patients"
    return fit_svm(x, y, seed)


def cross_fitted(method: str, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray | None, str]:
    """Leave-one-out fused scores of the validation rows: row i from a stacker fitted without it.
    (None, note) when a class has a single validation patient."""
    if int(np.bincount(y, minlength=2).min()) < 2:
        return None, ("validation scores are in-sample (a class has one validation patient, so "
                      "leave-one-out cross-fitting cannot fit); threshold and recalibration lean optimistic")
    out = np.empty(y.size)
    for i in range(y.size):
        rest = np.arange(y.size) != i
        clf, _ = fit_stacker(method, x[rest], y[rest], seed)
        out[i] = clf.predict_proba(x[i:i + 1])[0, 1]
    return out, f"validation scores cross-fitted (leave-one-out over {y.size} patients)"


def fuse(frames: list[pd.DataFrame], method: str, *, seed: int = 0) -> pd.DataFrame:
    """Fused predictions of one fold (columns subject, fold, model, role, y_true, probability).

    ``result.attrs["note"]`` says how a stacking model was fitted (written to the rule's log).
    """
    if method not in METHODS:
        raise FusionError(f"unknown fusion method {method!r}; choose from {METHODS}")
    if not frames:
        raise FusionError(f"fusion_{method}: no model predictions to fuse")
    wide = wide_predictions(frames)
    models = [c for c in wide.columns if c not in ("subject", "fold", "role", "y_true")]
    probs = wide[models].to_numpy(dtype=float)
    note = f"mean of {len(models)} models"
    if method == "mean":
        fused = probs.mean(axis=1)
    else:
        fit = (wide["role"] == FIT_ROLE).to_numpy()
        y_fit = wide.loc[fit, "y_true"].to_numpy().astype(int)
        fold = wide["fold"].iloc[0]
        if y_fit.size == 0:
            raise FusionError(f"fusion_{method}: fold {fold} has no inner-validation patients to fit "
                              f"the stacking model on; raise cv.val_fraction")
        if len(np.unique(y_fit)) < 2:
            raise FusionError(f"fusion_{method}: the inner-validation patients of fold "
                              f"{fold} hold a single class; raise cv.val_fraction")
        x = logit(probs)
        clf, note = fit_stacker(method, x[fit], y_fit, seed)
        fused = clf.predict_proba(x)[:, 1]
        cross, cross_note = cross_fitted(method, x[fit], y_fit, seed)
        if cross is not None:
            fused[np.flatnonzero(fit)] = cross
        note = f"{note}; {cross_note}"
    out = wide[["subject", "fold", "role", "y_true"]].copy()
    out.insert(2, "model", f"fusion_{method}")
    out["probability"] = fused
    out.attrs["note"] = f"fusion_{method} fold {wide['fold'].iloc[0]}: {note} ({', '.join(models)})"
    return out
