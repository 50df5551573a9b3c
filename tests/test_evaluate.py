"""oncoflow.metrics.evaluate.evaluate_predictions on synthetic cross-validated predictions: pooled
cv metrics over internal patients, thresholds from inner-validation patients only, external
cohort scored by the mean over the fold models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oncoflow.metrics import SUMMARY_KEYS, auc, youden_threshold
from oncoflow.metrics.evaluate import evaluate_predictions, fold_thresholds

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
    assert list(metrics.columns) == ["model", "cohort", *SUMMARY_KEYS]
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
    assert ext["brier"] == pytest.approx(np.mean((ens["p"] - ens["y"]) ** 2))


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
