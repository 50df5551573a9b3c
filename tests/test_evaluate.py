"""oncoflow.metrics.evaluate on synthetic cross-validated predictions: pooled cv metrics over
internal patients, thresholds from inner-validation patients only, external cohort scored by the
mean over the fold models, per-fold metrics, the tables the rule writes, and clear errors for
input that would otherwise give a silent number."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from oncoflow.metrics import SUMMARY_KEYS, auc, youden_threshold
from oncoflow.config import ConfigError
from oncoflow.metrics.choices import check_evaluate_config
from oncoflow.metrics.evaluate import (EvaluationError, evaluate_predictions,
                                       evaluate_study, fold_thresholds, per_fold_metrics,
                                       pool_predictions, METRICS_COLUMNS)

FOLDS = 3
N_INTERNAL = 30
N_EXTERNAL = 9


def cv_predictions(seed: int = 0, models: tuple[str, ...] = ("t1c_resnet18",)) -> pd.DataFrame:
    """Rows as the workflow concatenates them: every fold's train / val / test / external
    predictions. Internal subject i is tested in fold i % 3; val is 3 of the remaining subjects."""
    rng = np.random.default_rng(seed)
    y_int = rng.permutation([0, 1] * (N_INTERNAL // 2))
    y_ext = rng.permutation([0] * 5 + [1] * 4)
    rows = []
    for model in models:
        for fold in range(FOLDS):
            others = [i for i in range(N_INTERNAL) if i % FOLDS != fold]
            val = set(rng.choice(others, size=9, replace=False).tolist())
            for i in range(N_INTERNAL):
                role = "test" if i % FOLDS == fold else "val" if i in val else "train"
                p = float(np.clip(0.5 + 0.25 * (y_int[i] - 0.5) + rng.normal(0, 0.2), 0.01, 0.99))
                rows.append({"subject": f"int{i:02d}", "fold": fold, "model": model, "role": role,
                             "y_true": int(y_int[i]), "probability": p})
            for i in range(N_EXTERNAL):
                p = float(np.clip(0.5 + 0.2 * (y_ext[i] - 0.5) + rng.normal(0, 0.2), 0.01, 0.99))
                rows.append({"subject": f"ext{i:02d}", "fold": fold, "model": model, "role": "external",
                             "y_true": int(y_ext[i]), "probability": p})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def preds() -> pd.DataFrame:
    return cv_predictions()


@pytest.fixture(scope="module")
def evaluated(preds):
    return evaluate_predictions(preds)


def test_table_layout(evaluated):
    metrics, pooled = evaluated
    assert list(metrics.columns) == METRICS_COLUMNS
    assert metrics[["model", "cohort"]].values.tolist() == [["t1c_resnet18", "cv"],
                                                            ["t1c_resnet18", "external"]]
    assert "threshold" in pooled.columns and "threshold_note" not in pooled.columns


def test_cv_row_pools_internal_test_patients(preds, evaluated):
    metrics, _ = evaluated
    cv = metrics.set_index("cohort").loc["cv"]
    test = preds[preds["role"] == "test"]
    assert cv["n"] == N_INTERNAL == test["subject"].nunique()
    assert cv["n_pos"] == test["y_true"].sum()
    assert cv["auc"] == pytest.approx(auc(test["y_true"], test["probability"]), abs=1e-12)


def test_thresholds_come_from_validation_rows(preds, evaluated):
    _, pooled = evaluated
    for fold in range(FOLDS):
        val = preds[(preds["fold"] == fold) & (preds["role"] == "val")]
        thr = youden_threshold(val["y_true"], val["probability"])
        assert (pooled.loc[pooled["fold"] == fold, "threshold"] == thr).all()
    # rewriting every test and external label and score leaves the thresholds alone
    rng = np.random.default_rng(9)
    changed = preds.copy()
    held_out = changed["role"].isin(["test", "external"])
    changed.loc[held_out, "y_true"] = 1 - changed.loc[held_out, "y_true"]
    changed.loc[held_out, "probability"] = rng.uniform(0, 1, held_out.sum())
    _, pooled_changed = evaluate_predictions(changed)
    key = ["model", "fold", "role", "subject"]
    pd.testing.assert_series_equal(pooled_changed.sort_values(key)["threshold"].reset_index(drop=True),
                                   pooled.sort_values(key)["threshold"].reset_index(drop=True))
    # ... whereas changing validation scores does move them
    val_changed = preds.copy()
    is_val = val_changed["role"] == "val"
    val_changed.loc[is_val, "probability"] = rng.uniform(0, 1, is_val.sum())
    _, pooled_val = evaluate_predictions(val_changed)
    assert not np.allclose(pooled_val.sort_values(key)["threshold"], pooled.sort_values(key)["threshold"])


def test_cv_threshold_metrics_use_each_folds_threshold(preds, evaluated):
    metrics, pooled = evaluated
    cv = metrics.set_index("cohort").loc["cv"]
    test = pooled[pooled["role"] == "test"]
    call = test["probability"] >= test["threshold"]
    y = test["y_true"] == 1
    assert cv["sensitivity"] == pytest.approx((call & y).sum() / y.sum())
    assert cv["specificity"] == pytest.approx((~call & ~y).sum() / (~y).sum())
    assert cv["accuracy"] == pytest.approx((call == y).mean())
    thr = fold_thresholds(preds, "youden").set_index("fold")["threshold"]
    assert cv["threshold"] == pytest.approx(thr.mean())


def test_threshold_metrics_have_wilson_cis_from_the_confusion_counts(evaluated):
    from oncoflow.metrics.classification import wilson_interval

    metrics, pooled = evaluated
    cv = metrics.set_index("cohort").loc["cv"]
    test = pooled[pooled["role"] == "test"]
    call, y = test["probability"] >= test["threshold"], test["y_true"] == 1
    tp, tn = int((call & y).sum()), int((~call & ~y).sum())
    assert (cv["sensitivity_ci_low"], cv["sensitivity_ci_high"]) == pytest.approx(wilson_interval(tp, int(y.sum())))
    assert (cv["npv_ci_low"], cv["npv_ci_high"]) == pytest.approx(wilson_interval(tn, int((~call).sum())))
    assert cv["accuracy_ci_low"] < cv["accuracy"] < cv["accuracy_ci_high"]
    # Newcombe (1998), example 81/263: Wilson 0.2553 to 0.3662; 0/20 keeps a non-zero width
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 20) == pytest.approx((0.0, 0.1611), abs=1e-4)


def test_calibration_below_the_minimum_events_is_not_assessable(evaluated, tmp_path):
    from oncoflow.metrics.evaluate import write_tables
    from oncoflow.metrics.choices import MIN_CALIBRATION_EVENTS

    metrics, pooled = evaluated
    assert MIN_CALIBRATION_EVENTS == 100
    # 15 positives in 30 patients: the estimates stay in the TSV, flagged, and the note says why
    assert not metrics["calibration_assessable"].any() and metrics["cal_slope"].notna().all()
    assert metrics["note"].str.contains("not assessable: 15 patients of the smaller class").any()
    write_tables(metrics, pooled, tmp_path)
    md = (tmp_path / "metrics.md").read_text()
    assert md.count("not assessable") == 2 * len(metrics) and "(Wilson CI)" in md


def test_external_row_is_the_fold_ensemble(preds, evaluated):
    metrics, _ = evaluated
    ext = metrics.set_index("cohort").loc["external"]
    rows = preds[preds["role"] == "external"]
    assert rows["subject"].value_counts().eq(FOLDS).all()
    ens = rows.groupby("subject").agg(y=("y_true", "first"), p=("probability", "mean"))
    assert ext["n"] == N_EXTERNAL
    assert ext["auc"] == pytest.approx(auc(ens["y"], ens["p"]), abs=1e-12)
    # not the pooled per-fold rows, nor a single fold's model
    assert ext["auc"] != pytest.approx(auc(rows["y_true"], rows["probability"]), abs=1e-9)
    thr = fold_thresholds(preds, "youden")["threshold"].mean()
    assert ext["threshold"] == pytest.approx(thr)
    call = ens["p"] >= thr
    assert ext["sensitivity"] == pytest.approx((call & (ens["y"] == 1)).sum() / ens["y"].sum())
    assert ext["brier_raw"] == pytest.approx(np.mean((ens["p"] - ens["y"]) ** 2))
    # brier: of the ensemble's recalibrated risks (the mean of the fold models' risks)
    _, pooled = evaluated
    risk = pooled[pooled["role"] == "external"].groupby("subject")["risk"].mean()
    assert ext["brier"] == pytest.approx(np.mean((risk - ens["y"]) ** 2))


def test_fixed_threshold(preds):
    metrics, pooled = evaluate_predictions(preds, threshold=0.4)
    assert (pooled["threshold"] == 0.4).all()
    cv = metrics.set_index("cohort").loc["cv"]
    test = preds[preds["role"] == "test"]
    y = test["y_true"] == 1
    assert cv["sensitivity"] == pytest.approx(((test["probability"] >= 0.4) & y).sum() / y.sum())


def test_several_models_are_evaluated_separately():
    preds = cv_predictions(models=("a", "b"))
    metrics, pooled = evaluate_predictions(preds)
    assert metrics[["model", "cohort"]].values.tolist() == [
        ["a", "cv"], ["a", "external"], ["b", "cv"], ["b", "external"]]
    for model in ("a", "b"):
        test = preds[(preds["model"] == model) & (preds["role"] == "test")]
        row = metrics[(metrics["model"] == model) & (metrics["cohort"] == "cv")].iloc[0]
        assert row["n"] == N_INTERNAL
        assert row["auc"] == pytest.approx(auc(test["y_true"], test["probability"]), abs=1e-12)


def test_no_external_cohort(preds):
    metrics, _ = evaluate_predictions(preds[preds["role"] != "external"])
    assert metrics["cohort"].tolist() == ["cv"]


def test_single_class_validation_falls_back_to_half(preds):
    one_class = preds.copy()
    mask = (one_class["fold"] == 1) & (one_class["role"] == "val")
    one_class.loc[mask, "y_true"] = 0
    metrics, pooled = evaluate_predictions(one_class)
    assert (pooled.loc[pooled["fold"] == 1, "threshold"] == 0.5).all()
    assert "fold 1: single-class validation set, threshold 0.5" in metrics.loc[0, "note"]


def test_subject_in_two_test_sets_raises(preds):
    twice = preds.copy()
    i = twice.index[(twice["fold"] == 1) & (twice["subject"] == "int00")]
    assert twice.loc[i, "role"].item() != "test"  # int00 is tested in fold 0
    twice.loc[i, "role"] = "test"
    with pytest.raises(ValueError, match="t1c_resnet18: a subject is in the test set of several folds"):
        evaluate_predictions(twice)


# ------------------------------------------------------------------- per fold
def test_per_fold_rows_use_each_folds_test_patients_and_threshold(preds):
    pooled = pool_predictions(preds)
    per_fold = per_fold_metrics(pooled)
    assert list(per_fold.columns) == ["model", "fold", "cohort", *SUMMARY_KEYS]
    assert per_fold[["fold", "cohort"]].values.tolist() == [
        [f, c] for c in ("cv", "external") for f in range(FOLDS)]
    thr = fold_thresholds(preds, "youden").set_index("fold")["threshold"]
    for _, row in per_fold.iterrows():
        role = "test" if row["cohort"] == "cv" else "external"
        rows = preds[(preds["fold"] == row["fold"]) & (preds["role"] == role)]
        assert row["n"] == len(rows) == (N_INTERNAL // FOLDS if role == "test" else N_EXTERNAL)
        assert row["auc"] == pytest.approx(auc(rows["y_true"], rows["probability"]), abs=1e-12)
        assert row["threshold"] == thr[row["fold"]]
        y, call = rows["y_true"] == 1, rows["probability"] >= thr[row["fold"]]
        assert row["sensitivity"] == pytest.approx((call & y).sum() / y.sum())
    # the folds' test patients together are the pooled cv row's patients
    assert per_fold.loc[per_fold["cohort"] == "cv", "n"].sum() == N_INTERNAL


def test_per_fold_degenerate_fold_is_nan_with_reasons(preds):
    one_class = preds.copy()
    fold1 = (one_class["fold"] == 1) & one_class["role"].isin(["test", "val"])
    one_class.loc[fold1, "y_true"] = 1
    per_fold = per_fold_metrics(pool_predictions(one_class))
    row = per_fold[(per_fold["fold"] == 1) & (per_fold["cohort"] == "cv")].iloc[0]
    assert np.isnan(row["auc"]) and np.isnan(row["specificity"])
    assert "auc undefined: only positives" in row["note"]
    assert "fold 1: single-class validation set, threshold 0.5" in row["note"]
    assert row["threshold"] == 0.5
    other = per_fold[(per_fold["fold"] == 0) & (per_fold["cohort"] == "cv")].iloc[0]
    assert np.isfinite(other["auc"]) and "fold 1" not in other["note"]


def test_evaluate_study_writes_every_table(preds, tmp_path):
    files = {"metrics": "metrics.tsv", "metrics_md": "metrics.md", "metrics_tex": "metrics.tex",
             "metrics_per_fold": "metrics_per_fold.tsv", "metrics_per_fold_md": "metrics_per_fold.md",
             "metrics_per_fold_tex": "metrics_per_fold.tex", "predictions": "predictions.tsv"}
    metrics = evaluate_study(preds, tmp_path, ci_method="bootstrap", n_boot=200, seed=1)
    assert all((tmp_path / file).is_file() for file in files.values())
    expected, pooled = evaluate_predictions(preds, ci_method="bootstrap", n_boot=200, seed=1)
    pd.testing.assert_frame_equal(metrics, expected)
    back = pd.read_csv(tmp_path / "metrics.tsv", sep="\t")
    assert back[["model", "cohort"]].values.tolist() == metrics[["model", "cohort"]].values.tolist()
    per_fold = pd.read_csv(tmp_path / "metrics_per_fold.tsv", sep="\t")
    assert len(per_fold) == 2 * FOLDS and "fold" in per_fold.columns
    assert (tmp_path / "metrics_per_fold.md").read_text().split("|")[1:4] == [" model        ", " fold ", " cohort   "]
    assert "threshold_note" not in pd.read_csv(tmp_path / "predictions.tsv", sep="\t").columns
    assert len(pd.read_csv(tmp_path / "predictions.tsv", sep="\t")) == len(pooled)


@pytest.mark.parametrize("change,match", [
    (lambda p: p.assign(probability=p["probability"].where(p.index != 5)), "probability missing or not finite"),
    (lambda p: p.assign(y_true=p["y_true"].replace(1, 2)), "y_true must be 0/1"),
    (lambda p: p.drop(columns="role"), r"lack column\(s\) \['role'\]"),
    (lambda p: p.iloc[:0], "no predictions"),
])
def test_bad_predictions_raise_clear_errors(preds, change, match):
    with pytest.raises(EvaluationError, match=match):
        evaluate_predictions(change(preds))


def test_external_label_disagreement_raises(preds):
    bad = preds.copy()
    hit = (bad["subject"] == "ext00") & (bad["fold"] == 2)
    bad.loc[hit, "y_true"] = 1 - bad.loc[hit, "y_true"]
    with pytest.raises(EvaluationError, match="external subject has different labels"):
        evaluate_predictions(bad)


def test_evaluate_config_checks():
    ok = {"dca_range": [0.05, 0.95], "dca_step": 0.01}
    check_evaluate_config(ok)
    with pytest.raises(ConfigError, match=r"evaluate\.dca_range: start 0.5 must be below stop 0.2"):
        check_evaluate_config({**ok, "dca_range": [0.5, 0.2]})
    with pytest.raises(ConfigError, match=r"evaluate\.dca_step: 0.5 is wider"):
        check_evaluate_config({**ok, "dca_range": [0.1, 0.3], "dca_step": 0.5})


def test_model_order_is_kept_through_every_table():
    """Tables and figures list models in the workflow's order (config order, fusion last), also
    when read back from predictions.tsv."""
    from oncoflow.metrics.evaluate import compare_models, predictions_table

    preds = cv_predictions(models=("t2_resnet18", "fusion_mean", "flair_resnet18"))
    metrics, pooled = evaluate_predictions(preds)
    assert list(dict.fromkeys(metrics["model"])) == ["t2_resnet18", "fusion_mean", "flair_resnet18"]
    assert list(dict.fromkeys(pooled["model"])) == ["t2_resnet18", "fusion_mean", "flair_resnet18"]
    assert pooled.equals(predictions_table(pooled))  # sorting again changes nothing
    pairs = compare_models(pooled).query("cohort == 'cv'")[["model_a", "model_b"]].values.tolist()
    assert pairs == [["t2_resnet18", "fusion_mean"], ["t2_resnet18", "flair_resnet18"],
                     ["fusion_mean", "flair_resnet18"]]
    per_fold = per_fold_metrics(pool_predictions(pooled.drop(columns="threshold")))
    assert list(dict.fromkeys(per_fold["model"])) == ["t2_resnet18", "fusion_mean", "flair_resnet18"]


def test_pooled_auc_beside_fold_and_repeat_spread(tmp_path):
    reps = [cv_predictions(seed=s).assign(fold=lambda d, s=s: d["fold"] + FOLDS * s) for s in range(3)]
    preds = pd.concat(reps, ignore_index=True)
    metrics = evaluate_study(preds, tmp_path, n_boot=200, folds=FOLDS).set_index("cohort")
    single, _ = evaluate_predictions(reps[0], n_boot=200)
    single = single.set_index("cohort")
    # the cv and external rows are repeat 0's: the numbers a single split gives
    for col in ("auc", "auc_ci_low", "sensitivity", "cal_slope", "brier"):
        assert metrics.loc["cv", col] == pytest.approx(single.loc["cv", col]), col
    per_repeat = [auc(r.loc[r["role"] == "test", "y_true"], r.loc[r["role"] == "test", "probability"]) for r in reps]
    assert metrics.loc["cv", "auc_repeat_mean"] == pytest.approx(np.mean(per_repeat))
    assert metrics.loc["cv", "auc_repeat_sd"] == pytest.approx(np.std(per_repeat, ddof=1))
    assert metrics.loc["cv", "n_repeats"] == 3 and metrics.loc["cv", "n_folds"] == 3 * FOLDS
    fold_aucs = [auc(f["y_true"], f["probability"]) for _, f in preds[preds["role"] == "test"].groupby("fold")]
    assert metrics.loc["cv", "auc_fold_mean"] == pytest.approx(np.mean(fold_aucs))
    assert metrics.loc["cv", "auc_fold_sd"] == pytest.approx(np.std(fold_aucs, ddof=1))
    table = pd.read_csv(tmp_path / "metrics_per_repeat.tsv", sep="\t")
    np.testing.assert_allclose(table["auc"], per_repeat, rtol=1e-4)
    md = (tmp_path / "metrics.md").read_text()
    assert "pooled AUC" in md and "per-fold AUC mean" in md
    assert "repeat" in pd.read_csv(tmp_path / "predictions.tsv", sep="\t").columns


def test_comparisons_must_name_models_of_the_study():
    ev = {"dca_range": [0.05, 0.95], "dca_step": 0.01, "comparisons": [["t1c_resnet18", "t2_resnet18"]]}
    check_evaluate_config(ev, ["t1c_resnet18", "t2_resnet18", "baseline"])
    with pytest.raises(ConfigError, match="no model 't2_resnet18'.*t1c_resnet18, baseline"):
        check_evaluate_config(ev, ["t1c_resnet18", "baseline"])
