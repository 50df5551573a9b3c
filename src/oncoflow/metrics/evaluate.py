"""The evaluation tables of a cross-validated study, from every fold's predictions.

Cohorts:

- ``cv``: every internal patient once, predicted by the fold model that never saw it; AUC on the
  pooled probabilities; sensitivity etc. with each fold's own threshold.
- ``external``: the mean probability of the fold models (an ensemble); the threshold is the mean of
  the fold thresholds.

Thresholds are fitted on each fold's inner-validation patients only (Youden), or fixed by config.
So is each fold's recalibration (:mod:`oncoflow.metrics.recalibration`: a prior-shift correction
for models whose validation patients selected them, logistic recalibration on those patients for
the others): every prediction keeps its raw ``probability`` (AUC, thresholds: a monotone map leaves AUC unchanged) and gains a ``risk``
(calibration, Brier, decision curves).

Pooled vs per-fold AUC: the ``cv`` AUC ranks the pooled out-of-fold probabilities of the fold
models (each patient once); the models of different folds may be scaled differently, so
``auc_fold_mean`` / ``auc_fold_sd`` (the mean and SD of the per-fold test AUCs) stand beside it.
``auc_risk`` is the pooled AUC of the recalibrated risks: where each fold has a fitted map
(logistic recalibration, e.g. CNNs with train.selection nested) it puts the fold models on one
scale; the model card flags a model whose pooled and per-fold AUCs differ by more than
:data:`POOLED_GAP_MARGIN`.

Repeated cross-validation (``cv.repeats`` > 1, a ``repeat`` column): the ``cv`` and ``external``
rows are those of repeat 0 (the same numbers a single split gives); ``auc_repeat_mean`` /
``auc_repeat_sd`` are the mean and SD of the repeat-pooled AUCs, one per repeat
(``metrics_per_repeat.tsv``).

Tables:

- :func:`evaluate_predictions`: ``metrics.tsv``, one row per model and cohort (cv pooled,
  external), and the pooled predictions with their fold thresholds (``predictions.tsv``).
- :func:`per_fold_metrics`: ``metrics_per_fold.tsv``, one row per model, fold and cohort. ``cv`` is
  that fold's test patients; ``external`` is that fold's model alone on the external cohort. The
  spread over folds shows how stable a model is. Folds are small, so their CIs are wide and a
  fold with a single class has NaN AUC with a note.
- :func:`compare_models`: paired DeLong tests on the same patients, per cohort, with p-values
  adjusted within the family: ``comparisons.tsv`` holds the pre-specified family (the config's
  ``evaluate.comparisons`` and every model against ``baseline``), ``comparisons_exploratory.tsv``
  every pair. With repeats, each pair is tested in every repeat; the table gives the mean delta,
  its SD over repeats and the aggregated p = min(1, 2 x median p) (Meinshausen, Meier & Buhlmann
  2009, valid under any dependence between repeats).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd

from oncoflow import atomic
from oncoflow.metrics.classification import PROPORTIONS, proportion_cis, threshold_metrics, youden_threshold
from oncoflow.metrics.compare import (
    COMPARISON_COLUMNS,
    CORRECTIONS,
    adjust_pvalues,
    compare_aucs,
)
from oncoflow.metrics.choices import DEFAULT_METHOD, EvaluationError, comparison_family
from oncoflow.metrics.roc import _auc
from oncoflow.metrics.conformal import add_prediction_sets, coverage_table
from oncoflow.metrics.recalibration import (
    CALIBRATION_KEYS,
    apply_recalibration,
    calibration_assessable,
    calibration_statistics,
    fit_fold,
)
from oncoflow.metrics.summary import SUMMARY_KEYS, summarize
from oncoflow.metrics.tables import to_latex, to_markdown

THRESHOLD_KEYS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")
#: Wilson 95% (evaluate.ci_level) CIs of the threshold metrics that are proportions.
THRESHOLD_CI_KEYS = tuple(f"{m}_ci_{end}" for m in PROPORTIONS for end in ("low", "high"))
#: The pooled cv AUC and the mean of the per-fold AUCs differing by more than this: the fold models
#: are on different scales (the model card says so).
POOLED_GAP_MARGIN = 0.05
COHORTS = ("cv", "external")
#: Columns of metrics.md / .tex (metrics.tsv has all of SUMMARY_KEYS).
SHOWN = ["model", "cohort", "n", "accuracy", "sensitivity", "specificity", "ppv", "npv", "auc", "auc_ci_low",
         "auc_ci_high", "auc_risk", "auc_fold_mean", "auc_fold_sd", "cal_intercept", "cal_slope", "brier"]
#: Columns metrics.tsv adds to SUMMARY_KEYS: per-fold and per-repeat AUC spread, calibration of the
#: recalibrated risks (brier here replaces summarize's raw-probability Brier) and of the raw scores.
EXTRA_KEYS = ("auc_fold_mean", "auc_fold_sd", "n_folds", "auc_repeat_mean", "auc_repeat_sd", "n_repeats",
              *CALIBRATION_KEYS, "cal_slope_raw", "brier_raw")
#: Columns of metrics.tsv.
METRICS_COLUMNS = ["model", "cohort", *[k for k in SUMMARY_KEYS if k not in ("brier", "note")], *EXTRA_KEYS,
                   *THRESHOLD_CI_KEYS, "auc_risk", "calibration_assessable", "note"]
#: metrics.md / .tex headers: the pooled AUC named as such.
HEADERS = {"auc": "pooled AUC", "auc_ci_low": "CI low", "auc_ci_high": "CI high",
           "auc_risk": "pooled AUC of risks", "auc_fold_mean": "per-fold AUC mean", "auc_fold_sd": "per-fold AUC SD",
           "cal_intercept": "calibration intercept", "cal_slope": "calibration slope", "brier": "Brier (risk)",
           **{m: f"{m} (Wilson CI)" for m in PROPORTIONS}}
NOT_ASSESSABLE = "not assessable"
SHOWN_PER_FOLD = ["model", "fold", "cohort", "n", "n_pos", "threshold", "sensitivity",
                  "specificity", "auc", "auc_ci_low", "auc_ci_high"]
SHOWN_COMPARISONS = ["model_a", "model_b", "cohort", "n", "auc_a", "auc_b", "delta", "delta_ci_low",
                     "delta_ci_high", "p", "p_adjusted"]


def fold_thresholds(preds: pd.DataFrame, rule: str | float) -> pd.DataFrame:
    """(model, fold) -> threshold, and why when Youden could not be used."""
    rows = []
    for (model, fold), part in preds.groupby(["model", "fold"]):
        note = ""
        if rule != "youden":
            thr = float(rule)
        else:
            val = part[part["role"] == "val"]
            thr = 0.5
            if val.empty:
                note = f"fold {fold}: no validation patients, threshold 0.5"
            elif val["y_true"].nunique() < 2:
                note = f"fold {fold}: single-class validation set, threshold 0.5"
            else:
                thr = youden_threshold(val["y_true"].to_numpy(), val["probability"].to_numpy())
                if not np.isfinite(thr):
                    thr, note = 0.5, f"fold {fold}: constant validation scores, threshold 0.5"
        rows.append({"model": model, "fold": fold, "threshold": thr, "threshold_note": note})
    return pd.DataFrame(rows, columns=["model", "fold", "threshold", "threshold_note"])


def check_predictions(preds: pd.DataFrame) -> None:
    """Clear errors for what would otherwise crash later or give a silent number."""
    need = {"subject", "fold", "model", "role", "y_true", "probability"}
    if missing := need - set(preds.columns):
        raise EvaluationError(f"predictions lack column(s) {sorted(missing)}")
    if preds.empty:
        raise EvaluationError("no predictions to evaluate")
    bad = preds["probability"].isna() | ~np.isfinite(pd.to_numeric(preds["probability"], errors="coerce"))
    if bad.any():
        first = preds[bad].iloc[0]
        raise EvaluationError(f"{first['model']} fold {first['fold']}: probability missing or not "
                              f"finite for {int(bad.sum())} row(s), first subject {first['subject']!r}")
    if not preds["y_true"].isin([0, 1]).all():
        raise EvaluationError(f"y_true must be 0/1, got {sorted(set(preds['y_true']) - {0, 1})[:5]}")


def external_label(name: str | None) -> str:
    """The cohort label of an external cohort: ``external``, or ``external:<name>`` when the study
    has several (a ``cohort`` column in the predictions), each evaluated on its own."""
    return "external" if name is None else f"external:{name}"


def external_groups(part: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(label, rows) of each external cohort among ``part``'s external rows, sorted by name."""
    ext = part[part["role"] == "external"]
    if "cohort" not in ext.columns:
        if len(ext):
            yield external_label(None), ext
        return
    for name, rows in ext.groupby("cohort", sort=True):
        yield external_label(str(name)), rows


def cohort_predictions(pooled: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(model, cohort, frame with subject, y_true, probability, risk, threshold) per model and
    cohort, in the order of ``pooled``: cv = the pooled test folds, external = the fold-model
    ensemble (one per external cohort, :func:`external_groups`); with repeats, those of repeat 0
    (:func:`repeat_predictions` has every repeat)."""
    if "repeat" in pooled.columns:
        pooled = pooled[pooled["repeat"] == 0]
    if "risk" not in pooled.columns:
        pooled = pooled.assign(risk=pooled["probability"])
    for model, part in pooled.groupby("model", sort=False):
        test = part[part["role"] == "test"]
        if test["subject"].duplicated().any():
            raise EvaluationError(f"{model}: a subject is in the test set of several folds")
        yield model, "cv", test[["subject", "y_true", "probability", "risk", "threshold"]].reset_index(drop=True)
        for label, ext in external_groups(part):
            if (ext.groupby("subject")["y_true"].nunique() > 1).any():
                raise EvaluationError(f"{model}: an external subject has different labels in different folds")
            ens = ext.groupby("subject", sort=True).agg(y_true=("y_true", "first"),
                                                        probability=("probability", "mean"),
                                                        risk=("risk", "mean"),
                                                        threshold=("threshold", "mean"))
            yield model, label, ens.reset_index()


def repeat_predictions(pooled: pd.DataFrame) -> Iterator[tuple[str, int, pd.DataFrame]]:
    """(model, repeat, pooled test predictions of that repeat) for every repeat (one without a
    ``repeat`` column)."""
    repeats = pooled["repeat"] if "repeat" in pooled.columns else pd.Series(0, index=pooled.index)
    for (model, repeat), part in pooled.assign(_repeat=repeats).groupby(["model", "_repeat"], sort=False):
        test = part[part["role"] == "test"]
        if test["subject"].duplicated().any():
            raise EvaluationError(f"{model}: a subject is in the test set of several folds of repeat {repeat}")
        yield model, int(repeat), test.drop(columns="_repeat").reset_index(drop=True)


def _fold_aucs(test: pd.DataFrame) -> list[float]:
    """Per-fold test AUCs (folds with a single class left out)."""
    out = []
    for _, f in test.groupby("fold"):
        y = f["y_true"].to_numpy().astype(bool)
        if 0 < y.sum() < y.size:
            out.append(float(_auc(y, f["probability"].to_numpy(dtype=float))))
    return out


def spread_columns(pooled: pd.DataFrame) -> dict[str, dict[str, float]]:
    """model -> per-fold AUC mean/SD over every fold of every repeat, and the mean/SD of the
    repeat-pooled AUCs."""
    folds: dict[str, list[float]] = {}
    repeats: dict[str, list[float]] = {}
    for model, _, test in repeat_predictions(pooled):
        folds.setdefault(model, []).extend(_fold_aucs(test))
        y = test["y_true"].to_numpy().astype(bool)
        if 0 < y.sum() < y.size:
            repeats.setdefault(model, []).append(float(_auc(y, test["probability"].to_numpy(dtype=float))))
    out = {}
    for model, aucs in folds.items():
        f, r = np.array(aucs), np.array(repeats.get(model, []))
        out[model] = {"auc_fold_mean": float(f.mean()) if f.size else np.nan,
                      "auc_fold_sd": float(f.std(ddof=1)) if f.size > 1 else np.nan, "n_folds": int(f.size),
                      "auc_repeat_mean": float(r.mean()) if r.size else np.nan,
                      "auc_repeat_sd": float(r.std(ddof=1)) if r.size > 1 else np.nan, "n_repeats": int(r.size)}
    return out


def _pooled_auc(y: np.ndarray, score: np.ndarray) -> float:
    """AUC of pooled scores (NaN for a single class): of the recalibrated risks, the fold models'
    scores on one scale where each fold has a map (a per-fold map leaves per-fold AUCs unchanged)."""
    from oncoflow.metrics.roc import _auc

    yb = np.asarray(y).astype(bool)
    return float(_auc(yb, score)) if 0 < yb.sum() < yb.size else np.nan


def _row(model: str, cohort: str, y: np.ndarray, p: np.ndarray, thr: np.ndarray,
         ci_method: str, level: float, notes: list[str], n_boot: int, seed: int | None) -> dict[str, Any]:
    row = summarize(y, p, threshold=0.5, ci_method=ci_method, level=level, n_boot=n_boot, seed=seed)
    # Per-patient thresholds: shift each probability by its fold's threshold, then cut at 0.5.
    tm = threshold_metrics(y, np.clip(p - thr + 0.5, 0, 1), 0.5)
    row.update({k: tm[k] for k in THRESHOLD_KEYS})
    row.update(proportion_cis(tm, level))
    row["threshold"] = float(np.mean(thr))
    # summarize's own threshold notes describe the 0.5 cut it was given, not the fold thresholds.
    stale = set(threshold_metrics(y, p, 0.5)["note"].split("; "))
    kept = [n for n in row["note"].split("; ") if n and n not in stale]
    row["note"] = "; ".join(n for n in [tm["note"], *kept, *notes] if n)
    return {"model": model, "cohort": cohort, **row}


def recalibrate(preds: pd.DataFrame, methods: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``risk`` for every prediction: each (model, fold)'s map by the model's method in ``methods``
    (oncoflow.metrics.recalibration; :data:`DEFAULT_METHOD` for a model not listed), fitted on that
    fold's training (prior shift) or inner-validation rows (logistic) only; notes join
    threshold_note."""
    methods = methods or {}
    parts = []
    for (model, fold), part in preds.groupby(["model", "fold"], sort=False):
        p = part["probability"].to_numpy(dtype=float)
        a, b, note = fit_fold(methods.get(model, DEFAULT_METHOD), part["role"].to_numpy(),
                              part["y_true"].to_numpy(), p)
        note = f"fold {fold}: {note}" if note else ""
        parts.append(part.assign(risk=apply_recalibration(p, a, b), recalibration_note=note))
    return pd.concat(parts).loc[preds.index]


def add_repeats(preds: pd.DataFrame, folds: int | None) -> pd.DataFrame:
    """A ``repeat`` column (fold // folds) when the folds span several repeats of the CV."""
    if "repeat" in preds.columns or folds is None or int(preds["fold"].max()) < folds:
        return preds
    return preds.assign(repeat=preds["fold"].astype(int) // int(folds))


def pool_predictions(preds: pd.DataFrame, threshold: str | float = "youden", folds: int | None = None,
                     recalibration: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Every prediction with its (model, fold) threshold, recalibrated ``risk`` and the reasons for
    fallbacks (``threshold_note``). ``folds``: cv.folds, to tell the repeats apart;
    ``recalibration``: model -> method (:func:`recalibrate`)."""
    check_predictions(preds)
    preds = add_repeats(preds, folds)
    thresholds = fold_thresholds(preds, threshold)
    pooled = preds.merge(thresholds, on=["model", "fold"], validate="m:1")
    if "risk" not in pooled.columns:
        pooled = recalibrate(pooled, recalibration)
        pooled["threshold_note"] = ["; ".join(n for n in pair if n) for pair in
                                    zip(pooled["threshold_note"], pooled.pop("recalibration_note"))]
    return pooled


def evaluate_pooled(pooled: pd.DataFrame, *, ci_method: str = "delong", level: float = 0.95,
                    n_boot: int = 2000, seed: int | None = 0) -> pd.DataFrame:
    """metrics.tsv: one row per model and cohort, from :func:`pool_predictions`' output."""
    notes = {m: sorted({n for n in part["threshold_note"] if isinstance(n, str) and n})
             for m, part in pooled.groupby("model", sort=False)}
    spread = spread_columns(pooled)
    rows = []
    for model, cohort, c in cohort_predictions(pooled):
        y = c["y_true"].to_numpy()
        row = _row(model, cohort, y, c["probability"].to_numpy(), c["threshold"].to_numpy(), ci_method, level,
                   notes[model], n_boot, seed)
        row["brier_raw"] = row.pop("brier")
        row.update(calibration_statistics(y, c["risk"].to_numpy(dtype=float), level=level, n_boot=n_boot,
                                          seed=seed))
        row["cal_slope_raw"] = calibration_statistics(y, c["probability"].to_numpy(dtype=float), level=level,
                                                      n_boot=100, seed=seed)["cal_slope"]
        row["auc_risk"] = _pooled_auc(y, c["risk"].to_numpy(dtype=float))
        row["calibration_assessable"], note = calibration_assessable(y)
        row["note"] = "; ".join(n for n in (row["note"], note) if n)
        fill = {"n_folds": 0, "n_repeats": 0} if cohort != "cv" else spread.get(model, {})
        row.update({k: fill.get(k, np.nan) for k in EXTRA_KEYS[:6]})
        rows.append(row)
    return pd.DataFrame(rows, columns=METRICS_COLUMNS)


def per_repeat_metrics(pooled: pd.DataFrame, *, ci_method: str = "delong", level: float = 0.95,
                       n_boot: int = 2000, seed: int | None = 0) -> pd.DataFrame:
    """metrics_per_repeat.tsv: the pooled cv AUC (with CI), calibration and per-fold AUC spread of
    every repeat of the cross-validation (one row per model when there is a single repeat)."""
    rows = []
    for model, repeat, test in repeat_predictions(pooled):
        y = test["y_true"].to_numpy()
        s = summarize(y, test["probability"].to_numpy(dtype=float), ci_method=ci_method, level=level,
                      n_boot=n_boot, seed=seed)
        folds = np.array(_fold_aucs(test))
        risk = test["risk"] if "risk" in test.columns else test["probability"]
        cal = calibration_statistics(y, risk.to_numpy(dtype=float), level=level, n_boot=n_boot, seed=seed)
        rows.append({"model": model, "repeat": repeat, "cohort": "cv", "n": s["n"], "n_pos": s["n_pos"],
                     "auc": s["auc"], "auc_ci_low": s["auc_ci_low"], "auc_ci_high": s["auc_ci_high"],
                     "auc_fold_mean": float(folds.mean()) if folds.size else np.nan,
                     "auc_fold_sd": float(folds.std(ddof=1)) if folds.size > 1 else np.nan,
                     "cal_intercept": cal["cal_intercept"], "cal_slope": cal["cal_slope"], "brier": cal["brier"],
                     "note": s["note"]})
    return pd.DataFrame(rows)


def predictions_table(pooled: pd.DataFrame) -> pd.DataFrame:
    """predictions.tsv: the pooled predictions with their thresholds, sorted by fold, role and
    subject within each model; models keep their order (the config's: single models, then
    fusion), which every table and figure downstream follows."""
    out = pooled.drop(columns="threshold_note", errors="ignore")
    if "repeat" in out.columns:
        out = out[[c for c in out.columns if c != "repeat"] + ["repeat"]]
    order = {m: i for i, m in enumerate(dict.fromkeys(out["model"]))}
    out = out.assign(_order=out["model"].map(order)).sort_values(["_order", "fold", "role", "subject"])
    return out.drop(columns="_order").reset_index(drop=True)


def evaluate_predictions(
    preds: pd.DataFrame, *, threshold: str | float = "youden", ci_method: str = "delong",
    level: float = 0.95, n_boot: int = 2000, seed: int | None = 0, folds: int | None = None,
    recalibration: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (metrics, pooled predictions with their thresholds)."""
    pooled = pool_predictions(preds, threshold, folds, recalibration)
    metrics = evaluate_pooled(pooled, ci_method=ci_method, level=level, n_boot=n_boot, seed=seed)
    return metrics, predictions_table(pooled)


def per_fold_metrics(pooled: pd.DataFrame, *, ci_method: str = "delong", level: float = 0.95,
                     n_boot: int = 2000, seed: int | None = 0) -> pd.DataFrame:
    """metrics_per_fold.tsv: one row per model, cohort and fold, with that fold's threshold.

    cv: the fold's test patients; external: the fold's model alone on the external cohort.
    ``pooled``: :func:`pool_predictions`' output (or predictions.tsv read back). Models keep
    their order in ``pooled``.
    """
    rows = []
    for model, part in pooled.groupby("model", sort=False):
        groups = [("cv", part[part["role"] == "test"]), *external_groups(part)]
        for cohort, chosen in groups:
            for fold, rows_ in part.groupby("fold", sort=True):
                thr = float(rows_["threshold"].iloc[0])
                note = rows_["threshold_note"].iloc[0] if "threshold_note" in rows_ else ""
                rows_ = chosen[chosen["fold"] == fold]
                if rows_.empty:
                    if cohort == "cv":
                        raise EvaluationError(f"{model} fold {fold}: no test patients")
                    continue
                row = summarize(rows_["y_true"].to_numpy(), rows_["probability"].to_numpy(),
                                threshold=thr, ci_method=ci_method, level=level, n_boot=n_boot,
                                seed=seed)
                row["note"] = "; ".join(n for n in (row["note"], note) if isinstance(n, str) and n)
                rows.append({"model": model, "fold": int(fold), "cohort": cohort, **row})
    return pd.DataFrame(rows, columns=["model", "fold", "cohort", *SUMMARY_KEYS])


def _wide(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """subject x model probabilities (NaN where a model lacks the subject) and y_true."""
    long = pd.concat([f.assign(model=m) for m, f in frames.items()], ignore_index=True)
    labels = long.groupby("subject")["y_true"].nunique()
    if (labels > 1).any():
        raise EvaluationError(f"models disagree on the label of subject(s) {labels.index[labels > 1][:5].tolist()}")
    wide = long.pivot(index="subject", columns="model", values="probability")[list(frames)]
    wide.insert(0, "y_true", long.groupby("subject")["y_true"].first())
    return wide


def _compare_pair(wide: pd.DataFrame, a: str, b: str, level: float) -> pd.DataFrame:
    both = wide[[a, b]].notna().all(axis=1)
    sub = wide[both]
    part = compare_aucs(sub["y_true"].to_numpy(), {a: sub[a].to_numpy(), b: sub[b].to_numpy()},
                        correction="none", level=level)
    if not both.all():
        extra = f"compared on the {int(both.sum())} of {len(wide)} patients both models predicted"
        part["note"] = "; ".join(n for n in (part["note"].iloc[0], extra) if n)
    return part


def _by_repeat(pooled: pd.DataFrame) -> dict[int, dict[str, dict[str, pd.DataFrame]]]:
    """repeat -> cohort -> model -> frame (external only in repeat 0, as in metrics.tsv)."""
    out: dict[int, dict[str, dict[str, pd.DataFrame]]] = {}
    for model, cohort, frame in cohort_predictions(pooled):
        out.setdefault(0, {}).setdefault(cohort, {})[model] = frame
    if "repeat" in pooled.columns:
        for model, repeat, test in repeat_predictions(pooled):
            if repeat > 0:
                out.setdefault(repeat, {}).setdefault("cv", {})[model] = test
    return out


def compare_models(pooled: pd.DataFrame, *, correction: str = "holm", level: float = 0.95,
                   pairs: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Paired DeLong comparisons per cohort (cv pooled test folds, external ensemble), on the
    patients both models predicted; p adjusted within each cohort over the compared pairs.

    ``pairs``: the family to test (default: every two models). With repeats (a ``repeat``
    column), each pair is tested in every repeat; delta is the mean over repeats, delta_repeat_sd
    its SD, and p = min(1, 2 x median of the repeats' p) (Meinshausen et al. 2009); the CI and z
    are those of repeat 0."""
    if correction not in CORRECTIONS:
        raise EvaluationError(f"unknown correction {correction!r}; choose from {CORRECTIONS}")
    by_repeat = _by_repeat(pooled)
    tables = []
    for cohort in by_repeat.get(0, {}):
        frames = by_repeat.get(0, {}).get(cohort, {})
        if len(frames) < 2:
            continue
        models = list(frames)
        family = pairs if pairs is not None else [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
        family = [(a, b) for a, b in family if a in frames and b in frames]
        if not family:
            continue
        wides = {r: _wide(c[cohort]) for r, c in by_repeat.items() if len(c.get(cohort, {})) >= 2}
        parts = []
        for a, b in family:
            part = _compare_pair(wides[0], a, b, level)
            reps = [_compare_pair(w, a, b, level) for r, w in sorted(wides.items())
                    if a in w.columns and b in w.columns]
            deltas = np.array([float(r["delta"].iloc[0]) for r in reps])
            ps = np.array([float(r["p"].iloc[0]) for r in reps])
            part["n_repeats"] = len(reps)
            if len(reps) > 1:
                part["delta_repeat0"] = part["delta"]
                part["delta"] = float(np.nanmean(deltas))
                part["auc_a"] = float(np.mean([r["auc_a"].iloc[0] for r in reps]))
                part["auc_b"] = float(np.mean([r["auc_b"].iloc[0] for r in reps]))
                part["delta_repeat_sd"] = float(np.nanstd(deltas, ddof=1))
                part["p_repeat0"] = part["p"]
                part["p"] = float(min(1.0, 2 * np.nanmedian(ps))) if np.isfinite(ps).any() else np.nan
            parts.append(part)
        table = pd.concat(parts, ignore_index=True)
        table["p_adjusted"] = adjust_pvalues(table["p"].to_numpy(dtype=float), correction)
        table["correction"] = correction
        table.insert(2, "cohort", cohort)
        tables.append(table)
    columns = ["model_a", "model_b", "cohort", *[c for c in COMPARISON_COLUMNS if c not in ("model_a", "model_b")],
               "n_repeats"]
    if not tables:
        return pd.DataFrame(columns=columns)
    out = pd.concat(tables, ignore_index=True)
    extra = [c for c in ("delta_repeat_sd", "delta_repeat0", "p_repeat0") if c in out.columns]
    return out[columns + extra]


def write_table(df: pd.DataFrame, tsv: str | Path, md: str | Path | None = None,
                tex: str | Path | None = None, shown: list[str] | None = None,
                float_format: str = "%.4f") -> None:
    """TSV with every column (``float_format``), and Markdown / LaTeX with the ``shown`` ones."""
    atomic.write_table(df, tsv, index=False, float_format=float_format)
    view = df[shown] if shown else df
    if md:
        atomic.write_text(md, to_markdown(view))
    if tex:
        atomic.write_text(tex, to_latex(view))


def format_p(p: float) -> str:
    """p-value for a paper table: 3 decimals, '<0.001' below, 'NA' when undefined."""
    if p is None or not np.isfinite(p):
        return "NA"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def write_comparisons(table: pd.DataFrame, tables: Path, stem: str = "comparisons") -> None:
    """<stem>.tsv (every column, 4 significant digits) and .md / .tex (p formatted) in the folder
    ``tables``."""
    tables = Path(tables)
    shown = SHOWN_COMPARISONS + [c for c in ("delta_repeat_sd", "n_repeats") if c in table.columns
                                 and table[c].notna().any() and (c != "n_repeats" or (table[c] > 1).any())]
    view = table[shown].copy()
    for col in ("p", "p_adjusted"):
        view[col] = [format_p(v) for v in view[col]]
    view = view.rename(columns={"p_adjusted": f"p_adjusted ({table['correction'].iloc[0]})"}) if len(table) else view
    write_table(table, tables / f"{stem}.tsv", float_format="%.4g")
    atomic.write_text(tables / f"{stem}.md", to_markdown(view))
    atomic.write_text(tables / f"{stem}.tex", to_latex(view))


def compare_study(pooled: pd.DataFrame, tables: Path, *, comparisons: list[list[str]], correction: str = "holm",
                  level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule compare_models: comparisons.* (the pre-specified family, p adjusted within it) and
    comparisons_exploratory.* (every pair, p adjusted over all pairs) in the folder ``tables``."""
    models = list(dict.fromkeys(pooled["model"]))
    family = comparison_family(models, comparisons)
    confirmatory = compare_models(pooled, correction=correction, level=level, pairs=family)
    confirmatory.insert(3, "family", "pre-specified")
    exploratory = compare_models(pooled, correction=correction, level=level)
    exploratory.insert(3, "family", "exploratory")
    write_comparisons(confirmatory, tables, "comparisons")
    write_comparisons(exploratory, tables, "comparisons_exploratory")
    return confirmatory, exploratory


def with_ci(value: float, low: float, high: float) -> str:
    """``0.800 (0.490-0.943)``; NA when undefined."""
    if value is None or not np.isfinite(value):
        return "NA"
    return f"{value:.3f} ({low:.3f}-{high:.3f})" if np.isfinite(low) and np.isfinite(high) else f"{value:.3f}"


def shown_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """metrics.md / .tex cells: threshold metrics with their Wilson CIs, calibration intercept and
    slope "not assessable" where ``calibration_assessable`` is false (too few events)."""
    view = metrics[[c for c in SHOWN if c in metrics.columns]].copy()
    for m in PROPORTIONS:
        if m in view.columns and f"{m}_ci_low" in metrics.columns:
            view[m] = [with_ci(v, lo, hi) for v, lo, hi in
                       zip(metrics[m], metrics[f"{m}_ci_low"], metrics[f"{m}_ci_high"])]
    if "calibration_assessable" in metrics.columns:
        ok = metrics["calibration_assessable"].astype(str).str.lower() == "true"
        for col in ("cal_intercept", "cal_slope"):
            if col in view.columns:
                view[col] = [f"{v:.3f}" if good and np.isfinite(v) else NOT_ASSESSABLE if not good else "NA"
                             for v, good in zip(metrics[col], ok)]
    return view


def write_tables(metrics: pd.DataFrame, pooled: pd.DataFrame, tables: Path) -> None:
    """metrics.{tsv,md,tex} (the pooled AUC named as such in .md/.tex) and predictions.tsv (full
    precision) into the folder ``tables``."""
    tables = Path(tables)
    write_table(metrics, tables / "metrics.tsv", float_format="%.4f")
    view = shown_metrics(metrics).rename(columns=HEADERS)
    atomic.write_text(tables / "metrics.md", to_markdown(view))
    atomic.write_text(tables / "metrics.tex", to_latex(view))
    # every digit (the shortest text that reads back as the same float): verify-archive recomputes
    # the thresholds, risks and every table from this file, which a rounded copy would not reproduce
    atomic.write_table(pooled, tables / "predictions.tsv", index=False)


def subject_sites(splits: pd.DataFrame, column: str = "site") -> pd.Series | None:
    """subject -> site (or another per-subject ``column``, e.g. the external ``cohort``) from a
    splits table; None without that column."""
    if column not in splits.columns:
        return None
    return splits.drop_duplicates("subject").set_index("subject")[column].astype(str)


def add_sites(preds: pd.DataFrame, sites: pd.Series | None, column: str = "site") -> pd.DataFrame:
    """``preds`` with a ``site`` (or ``column``) column after ``subject`` (unchanged when there is
    none); a predicted subject missing from the splits table is an error naming it."""
    if sites is None:
        return preds
    values = preds["subject"].map(sites)
    if values.isna().any():
        missing = sorted(set(preds.loc[values.isna(), "subject"]))[:5]
        raise ValueError(f"predictions of subject(s) {missing} that folds/splits.tsv does not list (rerun "
                         "split_folds and the models)")
    out = preds.drop(columns=column, errors="ignore")
    after = "site" if column != "site" and "site" in out.columns else "subject"
    out.insert(int(out.columns.get_loc(after)) + 1, column, values.to_numpy())
    return out


def evaluate_study(preds: pd.DataFrame, tables: Path, *, threshold: str | float = "youden",
                   ci_method: str = "delong", ci_level: float = 0.95, n_boot: int = 2000,
                   seed: int | None = 0, folds: int | None = None,
                   splits: pd.DataFrame | None = None,
                   recalibration: Mapping[str, str] | None = None,
                   prediction_sets: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rule evaluate_models: metrics.{tsv,md,tex}, metrics_per_fold.{tsv,md,tex},
    metrics_per_repeat.tsv and predictions.tsv in the folder ``tables`` from every fold's
    predictions. ``folds``: folds per repeat (tells the repeats apart); ``splits``: the splits
    table, whose ``site`` column (cohort.site) and ``cohort`` column (several external cohorts)
    predictions.tsv carries; ``recalibration``: model -> method (StudyPlan.evaluate_params);
    ``prediction_sets``: evaluate.prediction_sets (error_rate, by_class): a ``prediction_set``
    column and prediction_sets.{tsv,md} (oncoflow.metrics.conformal); None: neither.
    Returns the metrics."""
    tables = Path(tables)
    if splits is not None:  # site (cohort.site) and, with several external cohorts, each one's name
        preds = add_sites(preds, subject_sites(splits))
        preds = add_sites(preds, subject_sites(splits, "cohort"), "cohort")
    pooled = pool_predictions(preds, threshold, folds, recalibration)
    kw = {"ci_method": ci_method, "level": ci_level, "n_boot": n_boot, "seed": seed}
    metrics = evaluate_pooled(pooled, **kw)
    per_fold = per_fold_metrics(pooled, **kw)
    if prediction_sets is not None:
        error_rate, by_class = float(prediction_sets["error_rate"]), bool(prediction_sets["by_class"])
        pooled, _ = add_prediction_sets(pooled, error_rate, by_class=by_class, methods=recalibration)
        write_table(coverage_table(pooled, error_rate, by_class=by_class, level=ci_level), tables / "prediction_sets.tsv",
                    tables / "prediction_sets.md")
    write_tables(metrics, predictions_table(pooled), tables)
    write_table(per_fold, tables / "metrics_per_fold.tsv", tables / "metrics_per_fold.md",
                tables / "metrics_per_fold.tex", SHOWN_PER_FOLD)
    write_table(per_repeat_metrics(pooled, **kw), tables / "metrics_per_repeat.tsv")
    return metrics
