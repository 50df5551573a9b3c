"""Conformal prediction sets (oncoflow.metrics.conformal): the construction against crepes, coverage
on simulated patients with known risks, and that a fold's test labels never enter its own sets."""

import numpy as np
import pandas as pd
import pytest

from oncoflow.metrics.conformal import (
    Thresholds,
    add_prediction_sets,
    conformal_quantile,
    coverage_table,
    covers,
    fit_thresholds,
    min_calibration,
    prediction_sets,
)

ALPHA = 0.1


def _patients(rng: np.random.Generator, n: int, prevalence: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(y, risk) with known risks: the risk is the true probability of y = 1 (a calibrated model)."""
    logit = rng.normal(np.log(prevalence / (1 - prevalence)), 1.5, n)
    risk = 1 / (1 + np.exp(-logit))
    return (rng.random(n) < risk).astype(int), risk


def test_quantile_finite_sample_correction():
    scores = np.arange(1, 20) / 20  # n = 19: ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(scores, ALPHA) == pytest.approx(18 / 20)
    assert conformal_quantile(scores[:8], ALPHA) == np.inf  # ceil(9 * 0.9) = 9 > 8: keep every class
    assert conformal_quantile(np.array([]), ALPHA) == np.inf
    assert min_calibration(ALPHA) == 9 and min_calibration(0.05) == 19 and min_calibration(0.3) == 3
    assert conformal_quantile(scores[:9], ALPHA) < np.inf  # 9 is enough at 0.1


def test_set_edge_cases():
    t = Thresholds(negative=0.3, positive=0.4)  # negative kept when risk <= 0.3, positive when risk >= 0.6
    sets = prediction_sets(np.array([0.1, 0.3, 0.45, 0.6, 0.9]), t)
    assert list(sets) == ["negative", "negative", "empty", "positive", "positive"]
    wide = prediction_sets(np.array([0.0, 0.5, 1.0]), Thresholds(0.7, 0.7))
    assert list(wide) == ["negative", "uncertain", "positive"]
    assert list(prediction_sets(np.array([0.5]), Thresholds(np.inf, np.inf))) == ["uncertain"]
    assert list(covers(np.array(["uncertain", "empty", "positive", "negative", "positive"], dtype=object),
                       np.array([0, 1, 1, 1, 0]))) == [True, False, True, False, False]


@pytest.mark.parametrize("by_class", [False, True])
def test_sets_match_crepes(by_class):
    """Our sets are crepes' (a maintained conformal library): class k is kept when its
    non-smoothed conformal p-value exceeds the error rate."""
    from crepes.base import p_values_batch

    rng = np.random.default_rng(3)
    y_cal, r_cal = _patients(rng, 57)
    _, r_test = _patients(rng, 300)
    ours = prediction_sets(r_test, fit_thresholds(y_cal, r_cal, ALPHA, by_class=by_class))
    kept = []
    for cls in (0, 1):
        p_cls = r_test if cls == 1 else 1 - r_test
        cal = y_cal == cls if by_class else np.ones(y_cal.size, bool)
        cal_scores = np.where(y_cal == 1, 1 - r_cal, r_cal)[cal]
        kept.append(p_values_batch(cal_scores, 1 - p_cls, smoothing=False) > ALPHA)
    theirs = np.select([kept[0] & kept[1], kept[1], kept[0]], ["uncertain", "positive", "negative"], "empty")
    assert (ours == theirs).all()
    assert {"uncertain", "positive", "negative"} <= set(ours)


def test_coverage_holds_and_needs_the_correction():
    """2000 draws of 20 calibration and 50 test patients: mean coverage is k / (n + 1) = 19 / 21 with the
    (n + 1) correction (>= 0.9), and would be 18 / 21 = 0.857 with the plain empirical quantile."""
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(2000):
        y, risk = _patients(rng, 70)
        t = fit_thresholds(y[:20], risk[:20], ALPHA, by_class=False)
        hits.append(covers(prediction_sets(risk[20:], t), y[20:]).mean())
    hits = np.array(hits)
    mean, se = hits.mean(), hits.std(ddof=1) / np.sqrt(hits.size)
    assert abs(mean - 19 / 21) < 4 * se, (mean, se)
    assert mean - 4 * se > 18 / 21 + 0.02


def _study(rng: np.random.Generator, folds: int = 5, n_val: int = 200, n_test: int = 200,
           prevalence: float = 0.15, noise: float = 0.0) -> pd.DataFrame:
    """A pooled-predictions table of one model: per fold inner-validation and test rows of a model
    whose risk is the true risk seen through ``noise`` (logit noise: a weaker model)."""
    rows = []
    for fold in range(folds):
        for role, n in (("val", n_val), ("test", n_test)):
            y, risk = _patients(rng, n, prevalence)
            seen = 1 / (1 + np.exp(-(np.log(risk / (1 - risk)) + rng.normal(0, noise, n))))
            rows.append(pd.DataFrame({"model": "m", "fold": fold, "role": role, "y_true": y, "risk": seen,
                                      "subject": [f"f{fold}{role}{i}" for i in range(n)]}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("by_class", [False, True])
def test_cross_validated_coverage_on_known_risks(by_class):
    """5 folds x 200 test patients, thresholds from each fold's 200 validation patients: the
    configured level lies in the Wilson CI of the coverage; by class, within each class too."""
    pooled, fitted = add_prediction_sets(_study(np.random.default_rng(1)), ALPHA, by_class=by_class)
    assert set(fitted) == {("m", f) for f in range(5)}
    assert (pooled.loc[pooled["role"] == "val", "prediction_set"] == "").all()
    row = coverage_table(pooled, ALPHA).iloc[0]
    assert row["n"] == 1000 and row["cohort"] == "cv"
    assert row["coverage_ci_low"] <= 1 - ALPHA <= row["coverage_ci_high"], row.to_dict()
    assert row["uncertain"] + row["empty"] + row["negative"] + row["positive"] == pytest.approx(1)
    if by_class:
        assert row["coverage_positive"] > 0.85 and row["coverage_negative"] > 0.85


def test_by_class_protects_the_minority_class():
    """Imbalanced classes and a weak model: marginal sets cover the positives far below the level
    (the guarantee is over patients, not per class); class-conditional ones do not."""
    study = _study(np.random.default_rng(2), prevalence=0.1, noise=2.0)
    marginal = coverage_table(add_prediction_sets(study, ALPHA, by_class=False)[0], ALPHA).iloc[0]
    by_class = coverage_table(add_prediction_sets(study, ALPHA, by_class=True)[0], ALPHA).iloc[0]
    assert marginal["coverage_positive"] < 0.75
    assert by_class["coverage_positive"] > 0.85


def test_test_labels_never_enter_their_own_sets():
    """Shuffling the test patients' labels leaves every set unchanged (the thresholds come from the
    validation rows); shuffling the validation labels changes them. Models whose validation
    patients selected them (recalibration other than logistic) get no sets."""
    study = _study(np.random.default_rng(4), folds=2, n_val=60, n_test=60)
    base, _ = add_prediction_sets(study, ALPHA)
    rng = np.random.default_rng(5)
    for role, same in (("test", True), ("val", False)):
        shuffled = study.copy()
        mask = shuffled["role"] == role
        shuffled.loc[mask, "y_true"] = rng.permutation(shuffled.loc[mask, "y_true"].to_numpy())
        again, _ = add_prediction_sets(shuffled, ALPHA)
        assert (again["prediction_set"] == base["prediction_set"]).all() == same
    none, fitted = add_prediction_sets(study, ALPHA, methods={"m": "prior_shift"})
    assert not fitted and (none["prediction_set"] == "").all()


def test_external_patients_count_once_and_sites_get_rows():
    study = _study(np.random.default_rng(6), folds=2, n_val=80, n_test=80)
    study["site"] = np.where(np.arange(len(study)) % 2, "A", "B")
    ext = study[study["role"] == "test"].assign(role="external", subject=lambda d: "x" + d.index.astype(str).str[-2:])
    pooled, _ = add_prediction_sets(pd.concat([study, ext], ignore_index=True), ALPHA)
    table = coverage_table(pooled, ALPHA)
    assert not table["note"].str.contains("fewer than").any()
    few = study[(study["role"] != "val") | (study["y_true"] == 0) | (study.index % 10 == 0)]  # ~2 positives a fold
    small = coverage_table(add_prediction_sets(few, ALPHA)[0], ALPHA)
    assert small.at[0, "note"].startswith("all 2 folds: fewer than 9 calibration patients of a class")
    assert list(table.loc[table["cohort"] == "cv", "site"]) == ["all", "A", "B"]
    external = table[table["cohort"] == "external"].iloc[0]
    assert external["n"] == ext["subject"].nunique()


def test_methods_say_which_models_got_sets_and_what_is_guaranteed():
    """methods.md from the run's facts: the baseline (validation patients selected nothing) gets
    sets; CNNs whose validation patients chose the epoch do not; nested CNNs do, said to be approximate."""
    import copy

    from workflow_helpers import report_facts_for, tiny_config

    from oncoflow.report.methods import Cohort, render_methods

    config = tiny_config()
    config["evaluate"]["prediction_sets"] = {"error_rate": 0.2, "by_class": False}
    text = render_methods(report_facts_for(config, baseline=True), Cohort(40, 20, 0, 0, 0), software={})
    sentence = next(s for s in text.split("\n") if "prediction set holds" in s)
    assert "of `baseline`, a prediction set" in sentence and "error rate of 0.2" in sentence
    assert "at least 80% over patients" in sentence and "approximately" not in sentence
    assert "Vovk V" in text
    none = render_methods(report_facts_for(tiny_config()), Cohort(40, 20, 0, 0, 0), software={})
    assert "No prediction sets were made" in none
    nested = copy.deepcopy(tiny_config())
    nested.setdefault("train", {})["selection"] = "nested"
    text = render_methods(report_facts_for(nested), Cohort(40, 20, 0, 0, 0), software={})
    assert "`t1ce_resnet18`" in text.split("prediction set holds")[0].rsplit("For each test", 1)[1]
    assert "within each class" in text and "holds only approximately" in text
    # what scored the test patients, and what the calibration map was applied to, as configured
    assert "from the mean logit of those models" in text and "the scale it was fitted on" in text
    nested["train"]["nested_model"] = "refit"
    text = render_methods(report_facts_for(nested), Cohort(40, 20, 0, 0, 0), software={})
    assert "from the refitted model" in text and "which it never saw" in text


def test_model_card_shows_the_coverage_table():
    from test_model_card import small_run
    from workflow_helpers import report_facts_for

    from oncoflow.report.model_card import card_markdown, model_card

    pooled, _ = add_prediction_sets(_study(np.random.default_rng(7), folds=2).assign(model="fusion_mean"), ALPHA)
    table = coverage_table(pooled, ALPHA)
    run = small_run()
    card = model_card(report_facts_for(run.pop("config")), **run, prediction_sets=table)
    text = card_markdown(card)
    row = table.iloc[0]
    assert (f"| fusion_mean | cv | all | 400 | {row['coverage']:.3f} ({row['coverage_ci_low']:.3f} to "
            f"{row['coverage_ci_high']:.3f}) | {row['uncertain']:.3f} | {row['empty']:.3f} |") in text
    assert "under exchangeability" in text
    assert "Prediction sets" not in card_markdown(model_card(report_facts_for(small_run().pop("config")),
                                                             **{k: v for k, v in small_run().items() if k != "config"}))


def test_new_patients_get_the_majority_of_the_fold_models_sets():
    from oncoflow.metrics.conformal import majority_sets

    rows = pd.DataFrame({"subject": ["a"] * 3 + ["b"] * 3 + ["c"] * 2, "model": "m",
                         "risk": [0.2, 0.2, 0.2, 0.5, 0.5, 0.9, 0.5, 0.5],
                         "neg": [0.3, 0.1, 0.3, 0.6, 0.6, 0.6, np.nan, np.nan],
                         "pos": [0.3, 0.3, 0.9, 0.6, 0.2, 0.2, np.nan, np.nan]})
    sets = majority_sets(rows["risk"], rows["neg"], rows["pos"], [rows["subject"], rows["model"]])
    # a: negative in folds 1 and 3, positive in fold 3 only; b: negative in folds 1 and 2, positive
    # in 1 and 3 (risk 0.9: 1 - 0.9 <= 0.2); c: no thresholds (a model without sets)
    assert sets.to_dict() == {("a", "m"): "negative", ("b", "m"): "uncertain", ("c", "m"): ""}


def test_bundle_carries_the_thresholds_evaluation_used():
    """calibration.tsv's set_negative / set_positive are the thresholds evaluation fitted (same
    validation rows, same recalibrated risks); a model without sets gets none."""
    from oncoflow.metrics.evaluate import pool_predictions
    from oncoflow.predict.bundle import fold_calibration

    study = _study(np.random.default_rng(8), folds=3, n_val=60, n_test=20)
    study = pd.concat([study.rename(columns={"risk": "probability"}),
                       study.rename(columns={"risk": "probability"}).assign(model="cnn")], ignore_index=True)
    methods = {"m": "logistic", "cnn": "prior_shift"}
    _, fitted = add_prediction_sets(pool_predictions(study, recalibration=methods), ALPHA, methods=methods)
    table = fold_calibration(study, "youden", {"error_rate": ALPHA, "by_class": True}, methods)
    for _, row in table.iterrows():
        t = fitted.get((row["model"], row["fold"]))
        if row["model"] == "cnn":
            assert t is None and np.isnan(row["set_negative"]) and np.isnan(row["set_positive"])
        else:
            assert (row["set_negative"], row["set_positive"]) == pytest.approx((t.negative, t.positive))


def test_predict_ensemble_writes_the_majority_set_only_from_bundles_with_thresholds():
    from oncoflow.predict.apply import ensemble

    per_fold = pd.DataFrame({"subject": ["a"] * 3 + ["b"] * 3, "model": "baseline", "fold": [0, 1, 2] * 2,
                             "probability": [0.1, 0.2, 0.9, 0.5, 0.5, 0.5]})
    calibration = pd.DataFrame({"model": "baseline", "fold": [0, 1, 2], "threshold": 0.5, "recal_a": 0.0,
                                "recal_b": 1.0, "set_negative": [0.3, 0.3, 0.3], "set_positive": [0.6, 0.6, 0.6]})
    out = ensemble(per_fold, calibration).set_index("subject")
    assert out.loc["a", "prediction_set"] == "negative" and out.loc["b", "prediction_set"] == "positive"
    assert "prediction_set" not in ensemble(per_fold, calibration.drop(columns=["set_negative", "set_positive"]))
