"""Curves behind the figures: decision curves and calibration against hand-computed values (and
sklearn / statsmodels), the ROC bootstrap band, precision-recall points, and the study-level
curve tables (oncoflow.metrics.curves)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve as sk_calibration_curve
from sklearn.metrics import precision_recall_curve
from test_evaluate import N_EXTERNAL, N_INTERNAL, cv_predictions

from oncoflow.metrics import (MetricWarning, calibration_curve, decision_curve, pr_curve_points,
                              roc_band, roc_curve_points, threshold_grid)
from oncoflow.metrics.curves import CURVES, curve_tables, write_curves
from oncoflow.metrics.evaluate import pool_predictions

# ------------------------------------------------------------- decision curves
Y = np.array([1, 1, 0, 0, 1])
P = np.array([0.9, 0.6, 0.7, 0.2, 0.3])


def test_decision_curve_by_hand():
    dc = decision_curve(Y, P, [0.0, 0.25, 0.5, 0.6, 0.8])
    assert list(dc.columns) == ["threshold", "net_benefit", "treat_all", "treat_none", "tp", "fp", "n"]
    # n = 5, prevalence 0.6; treated: probability >= threshold
    # 0.25: TP 3 (0.9, 0.6, 0.3), FP 1 (0.7): 3/5 - 1/5 * (0.25/0.75)
    # 0.6: 0.6 itself is treated: TP 2, FP 1: 2/5 - 1/5 * 1.5
    expected_nb = [0.6, 3 / 5 - 1 / 5 / 3, 2 / 5 - 1 / 5, 2 / 5 - 1 / 5 * 1.5, 1 / 5]
    expected_all = [0.6, 0.6 - 0.4 / 3, 0.6 - 0.4, 0.6 - 0.4 * 1.5, 0.6 - 0.4 * 4]
    np.testing.assert_allclose(dc["net_benefit"], expected_nb, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dc["treat_all"], expected_all, rtol=0, atol=1e-12)
    assert (dc["treat_none"] == 0).all() and (dc["n"] == 5).all()
    assert dc["tp"].tolist() == [3, 3, 2, 2, 1] and dc["fp"].tolist() == [2, 1, 1, 1, 0]


def test_decision_curve_of_a_perfect_and_a_useless_model():
    y = np.array([0, 0, 0, 1, 1])
    t = threshold_grid(0.05, 0.95, 0.05)
    perfect = decision_curve(y, y.astype(float), t)
    np.testing.assert_allclose(perfect["net_benefit"], y.mean())  # all benefit, no harm
    constant = decision_curve(y, np.full(5, 0.4), t)  # treats all below 0.4, none above
    np.testing.assert_allclose(constant["net_benefit"], np.where(t <= 0.4, constant["treat_all"], 0.0))


def test_decision_curve_degenerate_and_invalid_input():
    one_class = decision_curve(np.zeros(4), [0.1, 0.2, 0.6, 0.9], [0.5])  # defined: only harm
    assert one_class["net_benefit"].item() == pytest.approx(-2 / 4)
    assert one_class["treat_all"].item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        decision_curve(Y, P * 2, [0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        decision_curve(Y, P, [0.5, 1.0])
    with pytest.raises(ValueError, match="non-empty"):
        decision_curve(Y, P, [])
    with pytest.raises(ValueError, match="NaN"):
        decision_curve(Y, [0.1, np.nan, 0.2, 0.3, 0.4], [0.5])


def test_threshold_grid():
    t = threshold_grid(0.05, 0.95, 0.01)
    assert t.size == 91 and t[0] == 0.05 and t[-1] == 0.95 and t[17] == 0.22  # exact decimals
    assert threshold_grid(0.1, 0.5, 0.15).tolist() == [0.1, 0.25, 0.4]
    for bad in ((0.5, 0.4, 0.01), (0.05, 1.0, 0.01), (0.05, 0.95, 0)):
        with pytest.raises(ValueError):
            threshold_grid(*bad)


# ------------------------------------------------------------------ calibration
def test_calibration_curve_by_hand():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.9, 0.65])
    cal = calibration_curve(y, p, n_bins=2)
    assert cal["n"].tolist() == [3, 3] and cal["n_pos"].tolist() == [1, 2]
    np.testing.assert_allclose(cal["mean_predicted"], [0.2, (0.6 + 0.9 + 0.65) / 3])
    np.testing.assert_allclose(cal["observed"], [1 / 3, 2 / 3])
    assert cal[["bin_low", "bin_high"]].values.tolist() == [[0.0, 0.5], [0.5, 1.0]]
    # Wilson 95% interval for 1 of 3, computed by hand: 0.0615, 0.7923
    assert cal["observed_ci_low"].iloc[0] == pytest.approx(0.061492, abs=1e-6)
    assert cal["observed_ci_high"].iloc[0] == pytest.approx(0.792340, abs=1e-6)
    # a prediction on an inner edge goes to the lower bin; empty bins are left out
    edge = calibration_curve([0, 1, 1], [0.5, 0.95, 1.0], n_bins=2)
    assert edge["bin"].tolist() == [0, 1] and edge["n"].tolist() == [1, 2]
    assert calibration_curve([0, 1], [0.05, 0.97], n_bins=10)["bin"].tolist() == [0, 9]


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [3, 5, 10])
def test_calibration_curve_matches_sklearn(strategy, n_bins):
    rng = np.random.default_rng(n_bins)
    p = np.round(rng.uniform(0, 1, 60), 2)  # ties too
    y = rng.uniform(0, 1, 60) < p
    cal = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    prob_true, prob_pred = sk_calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    np.testing.assert_allclose(cal["observed"], prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cal["mean_predicted"], prob_pred, rtol=0, atol=1e-12)
    assert cal["n"].sum() == 60


def test_calibration_wilson_matches_statsmodels():
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 200)
    y = rng.uniform(0, 1, 200) < p
    cal = calibration_curve(y, p, n_bins=7, strategy="quantile", level=0.9)
    low, high = proportion.proportion_confint(cal["n_pos"], cal["n"], alpha=0.1, method="wilson")
    np.testing.assert_allclose(cal["observed_ci_low"], low, atol=1e-12)
    np.testing.assert_allclose(cal["observed_ci_high"], high, atol=1e-12)


def test_calibration_invalid_input():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        calibration_curve([0, 1], [0.2, 1.2])
    with pytest.raises(ValueError, match="strategy"):
        calibration_curve([0, 1], [0.2, 0.4], strategy="kmeans")
    with pytest.raises(ValueError, match="n_bins"):
        calibration_curve([0, 1], [0.2, 0.4], n_bins=0)
    single = calibration_curve([1, 1, 1], [0.2, 0.5, 0.9], n_bins=2)  # one class: still defined
    assert single["observed"].tolist() == [1.0, 1.0]
    # all-negative / all-positive bins: the interval ends exactly at 0 / 1 (no rounding past them)
    for k in (0, 7):
        y = np.r_[np.ones(k), np.zeros(7 - k)]
        cal = calibration_curve(y, np.linspace(0.3, 0.4, 7), n_bins=1)
        assert cal["observed_ci_low"].item() <= cal["observed"].item() <= cal["observed_ci_high"].item()
        assert (cal["observed_ci_low"].item(), cal["observed_ci_high"].item())[k == 7] == float(k == 7)


# ----------------------------------------------------------------- ROC band, PR
def step_tpr(fpr: np.ndarray, tpr: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Brute force for an ROC curve without ties (only vertical and horizontal steps)."""
    return np.array([tpr[fpr <= g + 1e-12].max() for g in grid])


def test_roc_band_curve_is_the_empirical_curve():
    rng = np.random.default_rng(4)
    y = np.r_[np.zeros(25), np.ones(25)]
    s = y + rng.normal(0, 1, 50)
    band = roc_band(y, s, n_boot=200)
    assert list(band.columns) == ["fpr", "tpr", "tpr_low", "tpr_high"] and len(band) == 101
    fpr, tpr, _ = roc_curve_points(y, s)
    np.testing.assert_allclose(band["tpr"], step_tpr(fpr, tpr, band["fpr"].to_numpy()), atol=1e-12)
    # ties make a diagonal: two tied scores, one per class
    diag = roc_band([0, 1], [0.5, 0.5], fpr=[0, 0.3, 1], n_boot=10)
    np.testing.assert_allclose(diag["tpr"], [0, 0.3, 1])


def test_roc_band_is_a_monotone_percentile_band():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 80)
    s = 0.8 * y + rng.normal(0, 1, 80)
    band = roc_band(y, s, level=0.9, n_boot=500, seed=1)
    assert (band["tpr_low"] <= band["tpr_high"]).all()
    assert (np.diff(band["tpr_low"]) >= -1e-12).all() and (np.diff(band["tpr_high"]) >= -1e-12).all()
    assert ((band["tpr_low"] <= band["tpr"] + 1e-12) & (band["tpr"] <= band["tpr_high"] + 1e-12)).mean() > 0.95
    assert band["tpr_high"].iloc[-1] == 1.0 and band["tpr_low"].iloc[-1] == 1.0
    pd.testing.assert_frame_equal(roc_band(y, s, level=0.9, n_boot=500, seed=1), band)  # seeded
    assert not roc_band(y, s, level=0.9, n_boot=500, seed=2).equals(band)
    wider = roc_band(y, s, level=0.99, n_boot=500, seed=1)
    assert (wider["tpr_high"] - wider["tpr_low"]).mean() > (band["tpr_high"] - band["tpr_low"]).mean()
    # more patients, narrower band
    y10, s10 = np.tile(y, 10), np.tile(s, 10) + rng.normal(0, 1e-6, 800)
    big = roc_band(y10, s10, level=0.9, n_boot=300, seed=1)
    assert (big["tpr_high"] - big["tpr_low"]).mean() < 0.5 * (band["tpr_high"] - band["tpr_low"]).mean()


def test_roc_band_single_class_and_bad_grid():
    with pytest.warns(MetricWarning, match="roc band undefined: only positives"):
        band = roc_band([1, 1, 1], [0.1, 0.2, 0.3], n_boot=10)
    assert band[["tpr", "tpr_low", "tpr_high"]].isna().all().all() and len(band) == 101
    with pytest.raises(ValueError, match=r"fpr must be"):
        roc_band([0, 1], [0.1, 0.2], fpr=[0.1, 1.5])


@pytest.mark.parametrize("seed", [0, 1])
def test_pr_curve_points_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    s = np.round(rng.uniform(0, 1, 40) + 0.3 * y, 1)  # ties
    recall, precision, thr = pr_curve_points(y, s)
    assert (recall[0], precision[0], thr[0]) == (0.0, 1.0, np.inf)
    sk_p, sk_r, sk_t = precision_recall_curve(y, s)
    # sklearn: increasing thresholds, stops at full recall, then appends (precision 1, recall 0)
    k = sk_t.size
    np.testing.assert_allclose(recall[1:k + 1], sk_r[:-1][::-1])
    np.testing.assert_allclose(precision[1:k + 1], sk_p[:-1][::-1])
    np.testing.assert_allclose(thr[1:k + 1], sk_t[::-1])


# --------------------------------------------------------------- study tables
@pytest.fixture(scope="module")
def pooled() -> pd.DataFrame:
    return pool_predictions(cv_predictions(models=("a", "b")))


def test_curve_tables_cover_every_model_and_cohort(pooled):
    t = threshold_grid(0.1, 0.9, 0.1)
    tables = curve_tables(pooled, dca_thresholds=t, calibration_bins=4, n_boot=100)
    assert set(tables) == set(CURVES)
    for name, table in tables.items():
        assert list(table.columns[:2]) == ["model", "cohort"] and "note" in table.columns, name
        assert set(zip(table["model"], table["cohort"])) == {(m, c) for m in "ab" for c in ("cv", "external")}
        assert (table["note"] == "").all(), name
    dca = tables["dca"]
    assert len(dca) == 2 * 2 * t.size
    cv_a = dca[(dca["model"] == "a") & (dca["cohort"] == "cv")]
    test = pooled[(pooled["model"] == "a") & (pooled["role"] == "test")]
    pd.testing.assert_frame_equal(cv_a.drop(columns=["model", "cohort", "note"]).reset_index(drop=True),
                                  decision_curve(test["y_true"], test["probability"], t))
    assert (dca.loc[dca["cohort"] == "external", "n"] == N_EXTERNAL).all()
    assert (dca.loc[dca["cohort"] == "cv", "n"] == N_INTERNAL).all()
    cal = tables["calibration"]
    assert cal.groupby(["model", "cohort"])["n"].sum().tolist() == [N_INTERNAL, N_EXTERNAL] * 2
    assert len(tables["roc_band"]) == 4 * 101


def test_curve_tables_single_class_cohort_keeps_rows_with_reason(pooled, tmp_path):
    one_class = pooled.copy()
    one_class.loc[one_class["role"] == "external", "y_true"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reasons go into the tables, not into warnings
        tables = curve_tables(one_class, dca_thresholds=np.array([0.2, 0.5]), n_boot=50)
    ext = {name: t[t["cohort"] == "external"] for name, t in tables.items()}
    assert ext["roc"]["note"].str.contains("roc undefined: only negatives").all()
    assert ext["roc_band"]["tpr_low"].isna().all() and len(ext["roc_band"]) == 2 * 101
    assert ext["pr"]["note"].str.contains("no positive cases").all()
    assert (ext["dca"]["note"] == "").all() and len(ext["dca"]) == 4  # DCA is defined
    cv = tables["roc"][tables["roc"]["cohort"] == "cv"]
    assert (cv["note"] == "").all()

    write_curves(one_class, tmp_path, dca_range=(0.1, 0.3), dca_step=0.1, n_boot=20)
    back = pd.read_csv(tmp_path / "dca.tsv", sep="\t")
    assert back["threshold"].tolist() == [0.1, 0.2, 0.3] * 4
