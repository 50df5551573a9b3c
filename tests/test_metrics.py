"""oncoflow.metrics: agreement with R's pROC (stored reference values), sklearn, and
hand-computed examples; degenerate inputs; table formatting.

Reference values: tests/data/proc_reference/ (make_reference.R, run with pROC; R is not
needed to run these tests).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from oncoflow.metrics import (
    SUMMARY_KEYS,
    MetricWarning,
    auc,
    auc_ci,
    delong_test,
    pr_auc,
    roc_curve_points,
    summarize,
    threshold_metrics,
    to_latex,
    to_markdown,
    youden_threshold,
)
from oncoflow.metrics.roc import _boot_aucs

REF_DIR = Path(__file__).parent / "data" / "proc_reference"
DATA = pd.read_csv(REF_DIR / "datasets.tsv", sep="\t")
_ref = pd.read_csv(REF_DIR / "reference.tsv", sep="\t", dtype=str, keep_default_na=False)
REF = {(r.dataset, r.quantity): r.value for r in _ref.itertuples()}
DATASETS = list(dict.fromkeys(DATA["dataset"]))
EXACT = 1e-9  # AUC, DeLong CI and DeLong test are closed-form: agreement to rounding


def ref(ds: str, q: str) -> float:
    return float(REF[ds, q])  # float() reads "Inf", "-Inf", "NaN"


def data(ds: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = DATA[DATA["dataset"] == ds]
    return g["y"].to_numpy(), g["score_a"].to_numpy(), g["score_b"].to_numpy()


def lattice_step(y: np.ndarray) -> float:
    """AUC of a sample takes values k / (n_pos * n_neg): bootstrap quantiles move in such steps."""
    m = int(y.sum())
    return 1.0 / (m * (y.size - m))


@pytest.fixture(autouse=True)
def _no_warnings_leak():
    # Degenerate datasets warn on purpose; tests that care use pytest.warns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        yield


def test_reference_covers_required_datasets():
    assert REF["_meta", "pROC_version"] == "1.18.0"
    sizes = {ds: data(ds)[0] for ds in DATASETS}
    assert sizes["small"].size == 20
    assert sizes["ties"].size == 200 and len(np.unique(data("ties")[1])) <= 11
    assert (sizes["imbalanced"].sum(), (1 - sizes["imbalanced"]).sum()) == (18, 82)
    assert ref("nearperfect", "auc_a") > 0.98


# ----------------------------------------------------------------- vs pROC
@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("k", ["a", "b"])
def test_auc_and_delong_ci_match_proc(ds, k):
    y, a, b = data(ds)
    s = a if k == "a" else b
    assert auc(y, s) == pytest.approx(ref(ds, f"auc_{k}"), abs=EXACT)
    est, lo, hi = auc_ci(y, s, method="delong")
    assert est == pytest.approx(ref(ds, f"auc_{k}"), abs=EXACT)
    assert lo == pytest.approx(ref(ds, f"delong_low_{k}"), abs=EXACT)
    assert hi == pytest.approx(ref(ds, f"delong_high_{k}"), abs=EXACT)


@pytest.mark.parametrize("ds", DATASETS)
def test_delong_paired_test_matches_proc(ds):
    y, a, b = data(ds)
    z, p = delong_test(y, a, b)
    zr, pr = ref(ds, "delong_z"), ref(ds, "delong_p")
    if math.isinf(zr):  # degenerate: zero variance, different AUCs
        assert z == zr and p == pr == 0.0
    else:
        assert z == pytest.approx(zr, abs=EXACT)
        assert p == pytest.approx(pr, abs=EXACT)
    z_ba, p_ba = delong_test(y, b, a)
    assert z_ba == -z and p_ba == p


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("k", ["a", "b"])
@pytest.mark.parametrize("n_boot, tol", [(2000, 0.01), (20000, 0.005)])
def test_bootstrap_ci_matches_proc(ds, k, n_boot, tol):
    # Reference: pROC stratified bootstrap with 50,000 resamples (Monte-Carlo SD < 0.002).
    # A 2,000-resample bound has a Monte-Carlo SD of up to ~0.008 here, and on a small
    # sample the quantile can land on the neighbouring AUC lattice value (1/(m n) apart).
    y, a, b = data(ds)
    _, lo, hi = auc_ci(y, a if k == "a" else b, method="bootstrap", n_boot=n_boot, seed=0)
    tol = max(tol, lattice_step(y)) + 1e-12
    assert lo == pytest.approx(ref(ds, f"boot50000_low_{k}"), abs=tol)
    assert hi == pytest.approx(ref(ds, f"boot50000_high_{k}"), abs=tol)


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("k", ["a", "b"])
def test_youden_threshold_is_one_of_procs(ds, k):
    y, a, b = data(ds)
    t = youden_threshold(y, a if k == "a" else b)
    procs = [float(v) for v in REF[ds, f"youden_{k}"].split(";")]
    assert t in procs  # exact: same midpoint arithmetic as pROC
    assert t == max(procs)  # documented tie rule


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("k", ["a", "b"])
def test_threshold_metrics_match_proc_coords(ds, k):
    y, a, b = data(ds)
    tm = threshold_metrics(y, a if k == "a" else b, 0.5)  # "ties" has scores == 0.5
    for q in ["sensitivity", "specificity", "ppv", "npv", "accuracy"]:
        expected = ref(ds, f"{q}_{k}_at_0.5")
        if math.isnan(expected):
            assert math.isnan(tm[q]), q
        else:
            assert tm[q] == pytest.approx(expected, abs=EXACT), q


# ----------------------------------------------------------------- vs sklearn
@pytest.mark.parametrize("seed", range(5))
def test_auc_ap_and_curve_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 400))
    y = rng.random(n) < rng.uniform(0.1, 0.6)
    y[:2] = [True, False]
    s = np.round(rng.normal(size=n) + 0.8 * y, 1)  # many ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert auc(y.astype(int), s) == auc(y.astype(float), s) == auc(y, s)
    assert pr_auc(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    fpr, tpr, thr = roc_curve_points(y, s)
    fpr_s, tpr_s, thr_s = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, fpr_s)
    np.testing.assert_allclose(tpr, tpr_s)
    np.testing.assert_allclose(thr[1:], thr_s[1:])
    assert thr[0] == np.inf


def test_infinite_scores_rank_like_extremes():
    y, s = [0, 1, 1, 0, 1], [-np.inf, np.inf, np.inf, 0.0, 0.5]
    assert auc(y, s) == 1.0 and pr_auc(y, s) == 1.0
    fpr, tpr, thr = roc_curve_points(y, s)
    assert list(thr) == [np.inf, np.inf, 0.5, 0.0, -np.inf]
    assert list(tpr) == [0, 2 / 3, 1, 1, 1] and list(fpr) == [0, 0, 0, 0.5, 1]


# ----------------------------------------------------------------- hand example
# negatives 0.1 0.2 0.3 0.55 0.7 | positives 0.4 0.8 0.9
Y = np.array([0, 0, 0, 0, 0, 1, 1, 1])
S = np.array([0.1, 0.2, 0.3, 0.55, 0.7, 0.4, 0.8, 0.9])


def test_hand_example_threshold_metrics():
    # score >= 0.5 calls 0.55, 0.7 (neg) and 0.8, 0.9 (pos) positive: TP 2, FP 2, TN 3, FN 1
    tm = threshold_metrics(Y, S, 0.5)
    assert (tm["tp"], tm["fp"], tm["tn"], tm["fn"]) == (2, 2, 3, 1)
    expected = dict(n=8, n_pos=3, prevalence=3 / 8, accuracy=5 / 8, sensitivity=2 / 3,
                    specificity=3 / 5, balanced_accuracy=(2 / 3 + 3 / 5) / 2, ppv=2 / 4,
                    npv=3 / 4, f1=4 / 7, note="")
    assert {k: tm[k] for k in expected if k != "note"} == pytest.approx(
        {k: v for k, v in expected.items() if k != "note"})
    assert tm["note"] == ""
    # a threshold equal to a score calls it positive
    assert threshold_metrics(Y, S, 0.4)["sensitivity"] == 1.0


def test_hand_example_youden_auc_summary():
    # J at 0.35 = 1 + 3/5 - 1 = 0.6; at 0.75 (midpoint of 0.7 and 0.8) = 2/3 + 1 - 1 = 0.667
    assert youden_threshold(Y, S) == pytest.approx(0.75)
    assert auc(Y, S) == pytest.approx(13 / 15)  # 0.4 beats 3 negatives, 0.8 and 0.9 beat 5
    assert pr_auc(Y, S) == pytest.approx(1 / 3 + 1 / 3 + (1 / 3) * (3 / 5))
    row = summarize(Y, S, threshold=0.5)
    assert tuple(row) == SUMMARY_KEYS
    assert row["threshold"] == 0.5 and row["ppv"] == 0.5 and row["auc"] == pytest.approx(13 / 15)
    assert row["brier"] == pytest.approx((0.01 + 0.04 + 0.09 + 0.3025 + 0.49 + 0.36 + 0.04 + 0.01) / 8)
    assert row["auc_ci_low"] < row["auc"] < row["auc_ci_high"] == 1.0
    assert row["note"] == ""
    assert isinstance(row["n"], int) and isinstance(row["n_pos"], int)


def test_youden_tie_takes_largest_threshold():
    # J = 0.75 at 0.375 (sens 1, spec 3/4) and at 0.65 (sens 3/4, spec 1)
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.3, 0.35, 0.6, 0.4, 0.7, 0.8, 0.9]
    assert youden_threshold(y, s) == pytest.approx(0.65)


def test_summary_keys_are_the_metrics_tsv_columns():
    assert SUMMARY_KEYS == (
        "n", "n_pos", "prevalence", "threshold", "accuracy", "balanced_accuracy",
        "sensitivity", "specificity", "ppv", "npv", "f1", "auc", "auc_ci_low",
        "auc_ci_high", "auprc", "brier", "note")
    rows = [summarize(*data(ds)[:2]) for ds in DATASETS]
    assert list(pd.DataFrame(rows).columns) == list(SUMMARY_KEYS)


def test_summarize_bootstrap_and_level():
    y, a, _ = data("large")
    d95 = summarize(y, a, ci_method="bootstrap", seed=3)
    d80 = summarize(y, a, ci_method="bootstrap", seed=3, level=0.8)
    assert d95["auc_ci_low"] < d80["auc_ci_low"] < d80["auc"] < d80["auc_ci_high"] < d95["auc_ci_high"]
    assert d95 == summarize(y, a, ci_method="bootstrap", seed=3)


# ----------------------------------------------------------------- bootstrap mechanics
def test_bootstrap_seeded_and_independent_of_block_size():
    y, a, _ = data("imbalanced")
    yb = y.astype(bool)
    full = _boot_aucs(yb, a.astype(float), 500, seed=7)
    blocked = _boot_aucs(yb, a.astype(float), 500, seed=7, max_block_elems=1000)  # 10 per block
    np.testing.assert_array_equal(full, blocked)
    assert not np.array_equal(full, _boot_aucs(yb, a.astype(float), 500, seed=8))
    # every resample AUC lies on the lattice k / (2 m n) (exact integer arithmetic)
    m = int(yb.sum())
    np.testing.assert_allclose(full * 2 * m * (y.size - m), np.round(full * 2 * m * (y.size - m)), atol=1e-6)
    assert auc_ci(y, a, method="bootstrap", seed=1) == auc_ci(y, a, method="bootstrap", seed=1)


def test_bootstrap_resample_auc_is_exact():
    # _boot_aucs with one resample of everything == the AUC of that resample (recomputed)
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    s = np.round(rng.normal(size=300) + y, 1)
    ss = np.random.SeedSequence(11).spawn(2)
    ip = np.random.default_rng(ss[0]).integers(0, y.sum(), size=(1, y.sum()))[0]
    ineg = np.random.default_rng(ss[1]).integers(0, (~y).sum(), size=(1, (~y).sum()))[0]
    yr = np.r_[np.ones(ip.size), np.zeros(ineg.size)]
    sr = np.r_[s[y][ip], s[~y][ineg]]
    assert _boot_aucs(y, s, 1, seed=11)[0] == pytest.approx(roc_auc_score(yr, sr), abs=1e-12)


# ----------------------------------------------------------------- degenerate input
def test_single_class_gives_nan_with_reason():
    y, s = [1, 1, 1, 1], [0.2, 0.4, 0.6, 0.9]
    with pytest.warns(MetricWarning, match="auc undefined: only positives"):
        assert math.isnan(auc(y, s))
    with pytest.warns(MetricWarning, match="only negatives"):
        assert all(math.isnan(v) for v in auc_ci([0, 0, 0], [0.1, 0.2, 0.3]))
    with pytest.warns(MetricWarning, match="DeLong test undefined: only positives"):
        assert all(math.isnan(v) for v in delong_test(y, s, s))
    with pytest.warns(MetricWarning, match="youden_threshold undefined"):
        assert math.isnan(youden_threshold(y, s))
    with pytest.warns(MetricWarning, match="pr_auc undefined: no positive cases"):
        assert math.isnan(pr_auc([0, 0], [0.1, 0.2]))
    row = summarize(y, s)
    assert math.isnan(row["auc"]) and math.isnan(row["auc_ci_low"]) and math.isnan(row["specificity"])
    assert row["sensitivity"] == 0.5 and row["auprc"] == 1.0  # 0.6 and 0.9 are >= 0.5
    assert "auc undefined: only positives (n=4): no negative cases" in row["note"]
    assert "specificity undefined: no negative cases" in row["note"]
    neg = summarize([0, 0, 0], [0.1, 0.2, 0.9])
    assert math.isnan(neg["auprc"]) and math.isnan(neg["sensitivity"]) and neg["f1"] == 0.0
    assert "auprc undefined: no positive cases" in neg["note"]


def test_constant_scores_auc_half_and_zero_width_ci():
    y, a, _ = data("degenerate")  # score_a is constant: pROC gives 0.5 (0.5-0.5)
    with pytest.warns(MetricWarning, match="zero width"):
        assert auc_ci(y, a) == (0.5, 0.5, 0.5)
    with pytest.warns(MetricWarning, match="zero width"):
        assert auc_ci(y, a, method="bootstrap") == (0.5, 0.5, 0.5)
    assert delong_test(y, a, a) == (0.0, 1.0)  # pROC: 0/0 -> z = 0
    assert youden_threshold(y, a) == math.inf
    row = summarize(y, a, threshold=0.6)  # nobody called positive
    assert row["auc"] == 0.5 and row["auc_ci_low"] == row["auc_ci_high"] == 0.5
    assert math.isnan(row["ppv"]) and row["f1"] == 0.0 and row["sensitivity"] == 0.0
    assert "ppv undefined: no case predicted positive at threshold 0.6" in row["note"]
    assert "auc CI has zero width" in row["note"]


def test_too_few_per_class_for_delong():
    y, s = [1, 0, 0, 0], [0.9, 0.1, 0.5, 0.3]
    with pytest.warns(MetricWarning, match=r"DeLong needs >= 2 positives and >= 2 negatives \(got 1 and 3\)"):
        est, lo, hi = auc_ci(y, s)
    assert est == 1.0 and math.isnan(lo) and math.isnan(hi)
    assert "auc CI undefined" in summarize(y, s)["note"]


@pytest.mark.parametrize("y, s, match", [
    ([0, 1, 1], [0.1, 0.2], "length mismatch: y_true has 3 values, y_score has 2"),
    ([0, 1, 1], [0.1, float("nan"), 0.3], r"y_score contains 1 NaN value\(s\), first at index \[1\]"),
    ([0, 1, 2], [0.1, 0.2, 0.3], r"labels must be 0/1, got \[2\]"),
    ([0, 1, float("nan")], [0.1, 0.2, 0.3], "labels must be 0/1"),
    (["neg", "pos"], [0.1, 0.2], "labels must be 0/1, got non-numeric"),
    ([], [], "y_true is empty"),
    ([[0, 1]], [[0.1, 0.2]], "y_true must be 1-D"),
    ([0, 1], ["a", "b"], "y_score must be numeric"),
])
def test_invalid_input_raises_clear_error(y, s, match):
    for f in (auc, pr_auc, youden_threshold, summarize, lambda y, s: auc_ci(y, s, "bootstrap"),
              lambda y, s: threshold_metrics(y, s, 0.5), roc_curve_points):
        with pytest.raises(ValueError, match=match):
            f(y, s)


def test_invalid_options_raise():
    y, s = [0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6]
    with pytest.raises(ValueError, match="method must be 'delong' or 'bootstrap'"):
        auc_ci(y, s, method="wald")
    with pytest.raises(ValueError, match="level must be in"):
        auc_ci(y, s, level=95)
    with pytest.raises(ValueError, match="n_boot must be a positive integer"):
        auc_ci(y, s, method="bootstrap", n_boot=0)
    with pytest.raises(ValueError, match="threshold is NaN"):
        threshold_metrics(y, s, float("nan"))
    with pytest.raises(ValueError, match=r"length mismatch: y_true has 4 values, score_b has 3"):
        delong_test(y, s, s[:3])


def test_brier_needs_probabilities():
    row = summarize([0, 1, 0, 1], [-2.0, 1.5, 0.3, 3.0], threshold=0.0)
    assert math.isnan(row["brier"]) and row["auc"] == 1.0
    assert "brier undefined: scores outside [0, 1]" in row["note"]


# ----------------------------------------------------------------- tables
TABLE = pd.DataFrame({"model": ["cnn", "a_b"], "n": [120, 80], "auc": [0.91234, float("nan")]})


def test_to_markdown_exact():
    assert to_markdown(TABLE) == (
        "| model |   n |   auc |\n"
        "|:------|----:|------:|\n"
        "| cnn   | 120 | 0.912 |\n"
        "| a_b   |  80 |    NA |\n"
    )
    assert "| 0.91 |" in to_markdown(TABLE[["auc"]], floatfmt=".2f")
    assert to_markdown(pd.DataFrame({"x": ["a|b"]})) == "| x    |\n|:-----|\n| a\\|b |\n"


def test_to_latex_exact():
    assert to_latex(TABLE) == (
        "\\begin{tabular}{lrr}\n"
        "\\toprule\n"
        "model & n & auc \\\\\n"
        "\\midrule\n"
        "cnn & 120 & 0.912 \\\\\n"
        "a\\_b & 80 & -- \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
    )
    assert "AUC (95\\% CI) & x\\&y" in to_latex(pd.DataFrame({"AUC (95% CI)": ["1"], "x&y": [1]}))


def test_tables_from_summaries():
    rows = {m: summarize(*data("small")[:2]) for m in ["cnn", "radiomics"]}
    df = pd.DataFrame.from_dict(rows, orient="index")[["n", "auc", "auc_ci_low", "auc_ci_high"]]
    md = to_markdown(df, index=True)
    assert md.splitlines()[0] == "| index     |   n |   auc | auc_ci_low | auc_ci_high |"
    assert "| cnn       |  20 | 0.899 |      0.746 |       1.000 |" in md
    assert to_latex(df, index=True).count("\\\\") == 3
