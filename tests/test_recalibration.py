"""Recalibration (oncoflow.metrics.recalibration): a weighted-loss model's scores are not risks;
per-fold logistic recalibration on inner-validation patients turns them into risks.

The cohort is simulated with known risks, and the model is a real weighted-loss classifier
(class-weighted logistic regression, the same odds inflation as the CNNs' weighted_loss, over-fitted
on noise features as a small-cohort CNN is), trained per fold on that fold's training patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from oncoflow.metrics.evaluate import evaluate_predictions, pool_predictions
from oncoflow.metrics.recalibration import (
    apply_recalibration,
    calibration_statistics,
    expit,
    fit_recalibration,
    logit,
)
from oncoflow.train.folds import make_folds


def weighted_loss_predictions(n: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """(predictions of every fold as the workflow writes them, true risk per subject)."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n, 2))
    noise = rng.normal(size=(n, 40))
    risk = expit(-1.8 + signal @ np.array([1.0, 0.7]))  # prevalence about 0.2
    y = (rng.random(n) < risk).astype(int)
    subjects = [f"s{i:04d}" for i in range(n)]
    sheet = pd.DataFrame({"subject": subjects, "cohort": "internal", "y": y})
    splits = make_folds(sheet, label="y", folds=5, seed=seed, val_fraction=0.25)
    x = pd.DataFrame(np.hstack([signal, noise]), index=subjects)
    rows = []
    for fold, part in splits.groupby("fold"):
        part = part.set_index("subject")
        train = part.index[part["role"] == "train"]
        model = LogisticRegression(C=100.0, class_weight="balanced", max_iter=5000)
        model.fit(x.loc[train], part.loc[train, "label"])
        rows.append(pd.DataFrame({"subject": part.index, "fold": fold, "model": "weighted", "role": part["role"],
                                  "y_true": part["label"], "probability": model.predict_proba(x.loc[part.index])[:, 1]}))
    return pd.concat(rows, ignore_index=True), pd.Series(risk, index=subjects)


@pytest.fixture(scope="module")
def simulated():
    preds, risk = weighted_loss_predictions()
    metrics, pooled = evaluate_predictions(preds, n_boot=200)
    return preds, risk, metrics.set_index("cohort").loc["cv"], pooled


def test_recalibrated_risks_have_slope_one_and_raw_weighted_scores_do_not(simulated):
    _, true_risk, cv, pooled = simulated
    # raw weighted-loss scores: odds inflated (negative calibration intercept) and over-confident
    assert cv["cal_slope_raw"] < 0.8
    assert cv["brier_raw"] > cv["brier"] + 0.01
    # recalibrated on inner-validation patients: slope near 1, intercept near 0 (CIs cover them)
    assert abs(cv["cal_slope"] - 1) < 0.2 and cv["cal_slope_ci_low"] < 1 < cv["cal_slope_ci_high"]
    assert abs(cv["cal_intercept"]) < 0.2 and cv["cal_intercept_ci_low"] < 0 < cv["cal_intercept_ci_high"]
    assert cv["brier_ci_low"] < cv["brier"] < cv["brier_ci_high"]
    test = pooled[pooled["role"] == "test"].set_index("subject")
    # closer to the known risks than the raw scores, on average
    err_risk = np.mean(np.abs(test["risk"] - true_risk[test.index]))
    err_raw = np.mean(np.abs(test["probability"] - true_risk[test.index]))
    assert err_risk < 0.6 * err_raw
    # a monotone map per fold: the ranking (AUC) within each fold is unchanged
    for _, f in test.groupby("fold"):
        assert (f["risk"].rank().to_numpy() == f["probability"].rank().to_numpy()).all()


def test_recalibration_sees_only_inner_validation_patients(simulated):
    preds = simulated[0]
    base = pool_predictions(preds)
    changed = preds.copy()
    out = changed["role"].isin(["test", "train"])
    changed.loc[out, "y_true"] = 1 - changed.loc[out, "y_true"]  # labels a recalibration must not read
    again = pool_predictions(changed)
    np.testing.assert_allclose(again["risk"].to_numpy(), base["risk"].to_numpy())


def test_recalibration_fallbacks_and_separation():
    a, b, note = fit_recalibration(np.array([1, 1, 1]), np.array([0.2, 0.5, 0.9]))
    assert (a, b) == (0.0, 1.0) and "single-class" in note
    # separable validation patients: a finite, increasing map (the ridge on the slope)
    a, b, note = fit_recalibration(np.array([0, 0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.8, 0.9]))
    assert np.isfinite(a) and 0 < b < 20
    p = np.linspace(0.01, 0.99, 50)
    assert np.all(np.diff(apply_recalibration(p, a, b)) > 0)


def test_calibration_statistics_of_true_risks():
    rng = np.random.default_rng(1)
    risk = expit(rng.normal(-1, 1.2, size=4000))
    y = rng.random(risk.size) < risk
    stats = calibration_statistics(y, risk, n_boot=200)
    assert stats["cal_slope_ci_low"] < 1 < stats["cal_slope_ci_high"]
    assert stats["cal_intercept_ci_low"] < 0 < stats["cal_intercept_ci_high"]
    inflated = expit(logit(risk) + np.log(4.0))  # odds x 4, as weighted_loss at 1:4
    assert calibration_statistics(y, inflated, n_boot=200)["cal_intercept"] == pytest.approx(-np.log(4.0), abs=0.15)
