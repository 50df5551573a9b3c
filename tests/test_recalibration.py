"""Recalibration (oncoflow.metrics.recalibration): a weighted-loss model's scores are not risks.
Models whose inner-validation patients selected nothing are logistically recalibrated on them; a
CNN, whose validation patients chose its epoch, gets the prior-shift correction, which fits nothing.

The cohorts are simulated with known risks. The models are real weighted-loss classifiers
(class-weighted logistic regression, the same odds inflation as the CNNs' weighted_loss, over-fitted
on noise features as a small-cohort CNN is), trained per fold on that fold's training patients;
the CNN-like one is trained by gradient descent over epochs with the weighted loss of
oncoflow.train.loop and keeps the epoch of best inner-validation AUC, as train_model does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers_metrics import pairwise_auc
from sklearn.linear_model import LogisticRegression

from oncoflow.metrics.evaluate import evaluate_predictions, pool_predictions
from oncoflow.metrics.recalibration import (
    apply_recalibration,
    calibration_statistics,
    expit,
    fit_fold,
    fit_recalibration,
    logit,
    recalibration_methods,
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


def epoch_selected_predictions(cohorts: int = 10, n: int = 110, seed: int = 0) -> pd.DataFrame:
    """Predictions of a CNN-like model in 5-fold CV of ``cohorts`` simulated 110-patient studies
    (prevalence about 0.25, 20 noise features): weighted BCE (pos_weight = n_neg / n_pos) by
    full-batch gradient descent for 200 epochs, keeping the epoch of best inner-validation AUC. Its
    validation scores are optimistic (they chose the epoch), as the LGG CNN's were."""
    rows = []
    for c in range(cohorts):
        rng = np.random.default_rng(seed + c)
        x = rng.normal(size=(n, 22))
        y = (rng.random(n) < expit(-1.6 + x[:, :2] @ np.array([1.6, 1.2]))).astype(int)
        subjects = np.array([f"c{c}s{i:03d}" for i in range(n)])
        sheet = pd.DataFrame({"subject": subjects, "cohort": "internal", "y": y})
        splits = make_folds(sheet, label="y", folds=5, seed=seed + c, val_fraction=0.25)
        for fold, part in splits.groupby("fold"):
            at = {r: np.flatnonzero(np.isin(subjects, part.loc[part["role"] == r, "subject"]))
                  for r in ("train", "val")}
            tr, va = at["train"], at["val"]
            weight = np.where(y[tr] == 1, (y[tr] == 0).sum() / (y[tr] == 1).sum(), 1.0)
            w, b, best = np.zeros(x.shape[1]), 0.0, (-1.0, np.zeros(x.shape[1]), 0.0)
            for _ in range(200):
                g = weight * (expit(x[tr] @ w + b) - y[tr])
                w, b = w - x[tr].T @ g / tr.size, b - g.mean()
                val_auc = pairwise_auc(y[va], x[va] @ w)
                if val_auc > best[0]:
                    best = (val_auc, w.copy(), b)
            roles = part.set_index("subject").loc[subjects, "role"].to_numpy()
            rows.append(pd.DataFrame({"subject": subjects, "fold": c * 5 + fold, "model": "cnn", "role": roles,
                                      "y_true": y, "probability": expit(x @ best[1] + best[2])}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def epoch_selected():
    return epoch_selected_predictions()


def test_prior_shift_for_epoch_selected_models_and_why_not_logistic(epoch_selected):
    """The LGG failure mode: logistic recalibration on validation patients that chose the epoch
    steepens over-confident scores further; the prior shift fixes the odds inflation and fits
    nothing on them. (Folds of 10 cohorts are evaluated as one pooled cohort: 1100 test rows.)"""
    cv = {m: evaluate_predictions(epoch_selected, n_boot=100, recalibration={"cnn": m})[0]
          .set_index("cohort").loc["cv"] for m in ("prior_shift", "logistic")}
    shift, fitted = cv["prior_shift"], cv["logistic"]
    assert shift["auc"] == fitted["auc"]  # both monotone per fold; AUC is of the raw probabilities
    # raw weighted-loss scores: odds inflated and over-confident
    raw = calibration_statistics(epoch_selected.query("role == 'test'")["y_true"].to_numpy(),
                                 epoch_selected.query("role == 'test'")["probability"].to_numpy(), n_boot=100)
    assert raw["cal_intercept"] < -0.8 and raw["cal_intercept_ci_high"] < 0 and shift["cal_slope_raw"] < 0.6
    # prior shift: calibration-in-the-large restored (CI covers 0), spread untouched, Brier better
    assert shift["cal_intercept_ci_low"] < 0 < shift["cal_intercept_ci_high"]
    assert shift["cal_slope"] == pytest.approx(shift["cal_slope_raw"], abs=0.02)
    assert shift["brier"] < shift["brier_raw"] - 0.02
    # logistic recalibration on the optimistic validation patients: a steeper map, a worse slope
    assert fitted["cal_slope"] < 0.7 * fitted["cal_slope_raw"]
    assert fitted["cal_intercept_ci_high"] < 0


def test_prior_shift_does_not_read_validation_patients_and_survives_separable_ones(epoch_selected):
    fold = epoch_selected[epoch_selected["fold"] == 0]
    roles, y, p = fold["role"].to_numpy(), fold["y_true"].to_numpy(), fold["probability"].to_numpy()
    a, b, note = fit_fold("prior_shift", roles, y, p)
    n_pos, n_neg = (y[roles == "train"] == 1).sum(), (y[roles == "train"] == 0).sum()
    assert (a, b, note) == (pytest.approx(-np.log(n_neg / n_pos)), 1.0, "")
    # validation patients made perfectly separable (the LGG failure mode): the map is the same
    separable = np.where(roles == "val", (p > np.median(p[roles == "val"])).astype(int), y)
    assert fit_fold("prior_shift", roles, separable, p) == (a, b, note)
    risk = apply_recalibration(p, a, b)
    assert np.all(np.isfinite(risk)) and np.all(np.diff(risk[np.argsort(p)]) >= 0)
    assert fit_fold("prior_shift", roles, np.where(roles == "train", 0, y), p)[:2] == (0.0, 1.0)


def test_recalibration_method_per_model():
    methods = recalibration_methods({"a_cnn": "weighted_loss", "b_cnn": "balanced_sampler", "c_cnn": "none"},
                                    ["mean", "lr"], ["a_cnn", "b_cnn"], ["baseline", "radiomics_original"])
    assert methods == {"a_cnn": "prior_shift", "b_cnn": "prior_shift", "c_cnn": "none", "fusion_mean": "prior_shift",
                       "fusion_lr": "none", "baseline": "logistic", "radiomics_original": "logistic"}
    assert recalibration_methods({"a": "weighted_loss", "c": "none"}, ["mean"], ["a", "c"], [])["fusion_mean"] == "none"
