"""Pairwise model comparison: paired DeLong tests agree with pROC (stored reference values), the
multiple-comparison corrections agree with hand-computed values and statsmodels / R's p.adjust,
and the study-level table (oncoflow.metrics.evaluate.compare_models) compares models on the same
patients per cohort."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from test_evaluate import N_EXTERNAL, N_INTERNAL, cv_predictions
from test_metrics import DATASETS, EXACT, data, ref

from oncoflow.metrics import CORRECTIONS, adjust_pvalues, auc, compare_aucs, delong_test
from oncoflow.metrics.evaluate import (EvaluationError, compare_models, format_p, pool_predictions,
                                       write_comparisons)

P = np.array([0.01, 0.04, 0.03, 0.005])


@pytest.mark.parametrize("method,expected", [
    ("none", [0.01, 0.04, 0.03, 0.005]),
    ("bonferroni", [0.04, 0.16, 0.12, 0.02]),
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max
    ("holm", [0.03, 0.06, 0.06, 0.02]),
    # sorted -> x4/1, x4/2, x4/3, x4/4 = 0.02, 0.02, 0.04, 0.04 -> running min from the top
    ("fdr_bh", [0.02, 0.04, 0.04, 0.02]),
])
def test_adjust_pvalues_by_hand(method, expected):
    np.testing.assert_allclose(adjust_pvalues(P, method), expected, rtol=0, atol=1e-15)


def test_adjust_pvalues_caps_at_one_and_skips_nan():
    np.testing.assert_allclose(adjust_pvalues([0.6, 0.5], "bonferroni"), [1.0, 1.0])
    out = adjust_pvalues([0.01, np.nan, 0.04], "holm")  # family of 2, NaN stays NaN
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert np.isnan(adjust_pvalues([np.nan], "fdr_bh")).all()
    assert adjust_pvalues([], "holm").size == 0
    with pytest.raises(ValueError, match="unknown correction 'sidak'"):
        adjust_pvalues(P, "sidak")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues([0.5, 1.5], "holm")


@pytest.mark.parametrize("method", ["holm", "bonferroni", "fdr_bh"])
def test_adjust_pvalues_match_statsmodels(method):
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(3)
    for m in (1, 2, 7, 40):
        p = rng.uniform(0, 0.2, m) ** 2
        p[rng.integers(0, m)] = p[0]  # a tie
        expected = multitest.multipletests(p, method=method)[1]
        np.testing.assert_allclose(adjust_pvalues(p, method), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("ds", DATASETS)
def test_pairwise_delong_matches_proc(ds):
    y, a, b = data(ds)
    row = compare_aucs(y, {"a": a, "b": b}).iloc[0]
    assert row["auc_a"] == pytest.approx(ref(ds, "auc_a"), abs=EXACT)
    assert row["auc_b"] == pytest.approx(ref(ds, "auc_b"), abs=EXACT)
    assert row["delta"] == pytest.approx(ref(ds, "auc_a") - ref(ds, "auc_b"), abs=EXACT)
    z = ref(ds, "delong_z")
    if math.isinf(z):
        assert row["z"] == z and row["p"] == 0.0 and "variance of the difference is 0" in row["note"]
    else:
        assert row["z"] == pytest.approx(z, abs=1e-9) and row["p"] == pytest.approx(ref(ds, "delong_p"), abs=1e-12)
    assert (row["z"], row["p"]) == delong_test(y, a, b)
    assert row["p_adjusted"] == row["p"]  # a single comparison: nothing to correct
    assert row["n"] == y.size and row["n_pos"] == y.sum()


def test_delta_ci_is_the_delong_interval_of_the_difference():
    y, a, b = data("large")
    row = compare_aucs(y, {"a": a, "b": b}, level=0.9).iloc[0]
    sd = row["delta"] / row["z"]  # z = delta / sd
    assert row["delta_ci_low"] == pytest.approx(row["delta"] - norm.ppf(0.95) * sd, abs=1e-12)
    assert row["delta_ci_high"] == pytest.approx(row["delta"] + norm.ppf(0.95) * sd, abs=1e-12)
    # the CI excludes 0 exactly when the two-sided test at the same level rejects
    assert (row["delta_ci_low"] > 0 or row["delta_ci_high"] < 0) == (row["p"] < 0.1)


def test_every_pair_once_and_corrected_together():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    scores = {m: y * s + rng.normal(0, 1, 80) for m, s in (("x", 1.5), ("y", 0.8), ("z", 0.1))}
    table = compare_aucs(y, scores, correction="bonferroni")
    assert table[["model_a", "model_b"]].values.tolist() == [["x", "y"], ["x", "z"], ["y", "z"]]
    np.testing.assert_allclose(table["p_adjusted"], np.minimum(1, 3 * table["p"]))
    assert (table["correction"] == "bonferroni").all()
    for _, row in table.iterrows():
        assert row["auc_a"] == pytest.approx(auc(y, scores[row["model_a"]]))
    chosen = compare_aucs(y, scores, pairs=[("z", "x")])
    assert chosen[["model_a", "model_b"]].values.tolist() == [["z", "x"]] and chosen["delta"].iloc[0] < 0
    with pytest.raises(ValueError, match="no scores for model 'w'"):
        compare_aucs(y, scores, pairs=[("x", "w")])


def test_degenerate_comparisons_are_nan_with_a_reason():
    y = np.array([0, 0, 0, 1])
    s = np.array([0.1, 0.4, 0.3, 0.8])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reason in the table, no warning, no crash
        row = compare_aucs(y, {"a": s, "b": s[::-1]}).iloc[0]
    assert math.isnan(row["z"]) and math.isnan(row["p"]) and math.isnan(row["p_adjusted"])
    assert "DeLong needs >= 2 positives and >= 2 negatives (got 1 and 3)" in row["note"]
    assert row["auc_a"] == 1.0  # the AUCs themselves are defined
    one_class = compare_aucs(np.zeros(4), {"a": s, "b": s}).iloc[0]
    assert math.isnan(one_class["auc_a"]) and "only negatives" in one_class["note"]
    same = compare_aucs(np.array([0, 0, 1, 1]), {"a": s, "b": s}).iloc[0]
    assert (same["z"], same["p"]) == (0.0, 1.0) and "identical rankings" in same["note"]
    with pytest.raises(ValueError, match="NaN"):
        compare_aucs(np.array([0, 0, 1, 1]), {"a": s, "b": [0.1, np.nan, 0.2, 0.3]})


# ----------------------------------------------------------------- study level
@pytest.fixture(scope="module")
def pooled() -> pd.DataFrame:
    return pool_predictions(cv_predictions(models=("a", "b", "c")))


def test_compare_models_per_cohort(pooled):
    table = compare_models(pooled, correction="holm")
    assert list(table.columns[:3]) == ["model_a", "model_b", "cohort"]
    for column in ("n", "auc_a", "auc_b", "delta", "z", "p", "p_adjusted", "correction"):
        assert column in table.columns
    assert table[["model_a", "model_b", "cohort"]].values.tolist() == [
        ["a", "b", "cv"], ["a", "c", "cv"], ["b", "c", "cv"],
        ["a", "b", "external"], ["a", "c", "external"], ["b", "c", "external"]]
    cv, ext = table[table["cohort"] == "cv"], table[table["cohort"] == "external"]
    assert (cv["n"] == N_INTERNAL).all() and (ext["n"] == N_EXTERNAL).all()
    # the family is the cohort: Holm over 3 tests each
    for part in (cv, ext):
        np.testing.assert_allclose(part["p_adjusted"], adjust_pvalues(part["p"].to_numpy(), "holm"))
    # cv: the pooled test predictions of each model, paired by subject
    test = pooled[pooled["role"] == "test"].pivot(index="subject", columns="model", values="probability")
    y = pooled[pooled["role"] == "test"].groupby("subject")["y_true"].first().loc[test.index]
    z, p = delong_test(y, test["a"], test["b"])
    assert cv.iloc[0]["z"] == pytest.approx(z, abs=1e-12) and cv.iloc[0]["p"] == pytest.approx(p, abs=1e-12)
    # external: the fold-model ensemble (mean over the folds) of each model
    ens = pooled[pooled["role"] == "external"].groupby(["subject", "model"])["probability"].mean().unstack()
    y_ext = pooled[pooled["role"] == "external"].groupby("subject")["y_true"].first()
    assert ext.iloc[0]["auc_a"] == pytest.approx(auc(y_ext, ens["a"]), abs=1e-12)


@pytest.mark.parametrize("correction", CORRECTIONS)
def test_compare_models_correction_from_config(pooled, correction):
    table = compare_models(pooled, correction=correction)
    assert (table["correction"] == correction).all()
    if correction == "none":
        assert (table["p_adjusted"] == table["p"]).all()
    else:
        assert (table["p_adjusted"] >= table["p"]).all()
    with pytest.raises(EvaluationError, match="unknown correction"):
        compare_models(pooled, correction="fdr")


def test_compare_models_edge_cases(pooled):
    # one model: nothing to compare, an empty table with the columns
    single = compare_models(pooled[pooled["model"] == "a"])
    assert single.empty and "p_adjusted" in single.columns
    # a model that lacks a patient is compared on the patients both predicted, and says so
    gap = pooled[~((pooled["model"] == "c") & (pooled["subject"] == "int00"))]
    table = compare_models(gap)
    ac = table[(table["model_a"] == "a") & (table["model_b"] == "c") & (table["cohort"] == "cv")].iloc[0]
    assert ac["n"] == N_INTERNAL - 1 and f"{N_INTERNAL - 1} of {N_INTERNAL} patients" in ac["note"]
    # labels that disagree between models are an error, not a silent number
    relabelled = pooled.copy()
    hit = (relabelled["model"] == "b") & (relabelled["subject"] == "int01")
    relabelled.loc[hit, "y_true"] = 1 - relabelled.loc[hit, "y_true"]
    with pytest.raises(EvaluationError, match="disagree on the label of subject"):
        compare_models(relabelled)
    # an external cohort with a single class: the rows are there, NaN with the reason
    one_class = pooled.copy()
    one_class.loc[one_class["role"] == "external", "y_true"] = 0
    ext = compare_models(one_class).query("cohort == 'external'")
    assert len(ext) == 3 and ext["p"].isna().all() and ext["note"].str.contains("only negatives").all()


def test_comparison_tables_written(pooled, tmp_path):
    out = SimpleNamespace(**{f"comparisons{k}": tmp_path / f"comparisons.{e}"
                             for k, e in (("", "tsv"), ("_md", "md"), ("_tex", "tex"))})
    table = compare_models(pooled)
    table.loc[0, "p"] = 1e-5
    write_comparisons(table, tmp_path)
    back = pd.read_csv(out.comparisons, sep="\t")
    assert list(back.columns) == list(table.columns) and len(back) == 2 * 3
    md = out.comparisons_md.read_text()
    assert md.startswith("| model_a") and "p_adjusted (holm)" in md and "<0.001" in md
    assert r"\textless{}0.001" in out.comparisons_tex.read_text()
    assert [format_p(v) for v in (0.0004, 0.0123, float("nan"))] == ["<0.001", "0.012", "NA"]
