"""The evaluation tables of a cross-validated study, from every fold's predictions.

Cohorts:

- ``cv``: every internal patient once, predicted by the fold model that never saw it; AUC on the
  pooled probabilities; sensitivity etc. with each fold's own threshold.
- ``external``: the mean probability of the fold models (an ensemble); the threshold is the mean of
  the fold thresholds.

Thresholds are fitted on each fold's inner-validation patients only (Youden), or fixed by config.

Tables:

- :func:`evaluate_predictions`: ``metrics.tsv``, one row per model and cohort (cv pooled,
  external), and the pooled predictions with their fold thresholds (``predictions.tsv``).
- :func:`per_fold_metrics`: ``metrics_per_fold.tsv``, one row per model, fold and cohort. ``cv`` is
  that fold's test patients; ``external`` is that fold's model alone on the external cohort. The
  spread over folds shows how stable a model is. Folds are small, so their CIs are wide and a
  fold with a single class has NaN AUC with a note.
- :func:`compare_models`: ``comparisons.tsv``, paired DeLong tests between every two models on
  the same patients, per cohort, with the p-values adjusted within each cohort.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Iterator

import numpy as np
import pandas as pd

from oncoflow.metrics.classification import threshold_metrics, youden_threshold
from oncoflow.metrics.compare import COMPARISON_COLUMNS, CORRECTIONS, adjust_pvalues, compare_aucs
from oncoflow.metrics.summary import SUMMARY_KEYS, summarize
from oncoflow.metrics.tables import to_latex, to_markdown

THRESHOLD_KEYS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")
COHORTS = ("cv", "external")
#: Columns of metrics.md / .tex (metrics.tsv has all of SUMMARY_KEYS).
SHOWN = ["model", "cohort", "n", "accuracy", "sensitivity", "specificity", "auc", "auc_ci_low",
         "auc_ci_high"]
SHOWN_PER_FOLD = ["model", "fold", "cohort", "n", "n_pos", "threshold", "sensitivity",
                  "specificity", "auc", "auc_ci_low", "auc_ci_high"]
SHOWN_COMPARISONS = ["model_a", "model_b", "cohort", "n", "auc_a", "auc_b", "delta", "delta_ci_low",
                     "delta_ci_high", "p", "p_adjusted"]


class EvaluationError(ValueError):
    pass


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


def cohort_predictions(pooled: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(model, cohort, frame with subject, y_true, probability, threshold) per model and cohort,
    in the order of ``pooled``: cv = the pooled test folds, external = the fold-model ensemble."""
    for model, part in pooled.groupby("model", sort=False):
        test = part[part["role"] == "test"]
        if test["subject"].duplicated().any():
            raise EvaluationError(f"{model}: a subject is in the test set of several folds")
        yield model, "cv", test[["subject", "y_true", "probability", "threshold"]].reset_index(drop=True)
        ext = part[part["role"] == "external"]
        if len(ext):
            if (ext.groupby("subject")["y_true"].nunique() > 1).any():
                raise EvaluationError(f"{model}: an external subject has different labels in different folds")
            ens = ext.groupby("subject", sort=True).agg(y_true=("y_true", "first"),
                                                        probability=("probability", "mean"),
                                                        threshold=("threshold", "mean"))
            yield model, "external", ens.reset_index()


def _row(model: str, cohort: str, y: np.ndarray, p: np.ndarray, thr: np.ndarray,
         ci_method: str, level: float, notes: list[str], n_boot: int, seed: int | None) -> dict[str, Any]:
    row = summarize(y, p, threshold=0.5, ci_method=ci_method, level=level, n_boot=n_boot, seed=seed)
    # Per-patient thresholds: shift each probability by its fold's threshold, then cut at 0.5.
    tm = threshold_metrics(y, np.clip(p - thr + 0.5, 0, 1), 0.5)
    row.update({k: tm[k] for k in THRESHOLD_KEYS})
    row["threshold"] = float(np.mean(thr))
    # summarize's own threshold notes describe the 0.5 cut it was given, not the fold thresholds.
    stale = set(threshold_metrics(y, p, 0.5)["note"].split("; "))
    kept = [n for n in row["note"].split("; ") if n and n not in stale]
    row["note"] = "; ".join(n for n in [tm["note"], *kept, *notes] if n)
    return {"model": model, "cohort": cohort, **row}


def pool_predictions(preds: pd.DataFrame, threshold: str | float = "youden") -> pd.DataFrame:
    """Every prediction with its (model, fold) threshold and the reason for a fallback."""
    check_predictions(preds)
    thresholds = fold_thresholds(preds, threshold)
    return preds.merge(thresholds, on=["model", "fold"], validate="m:1")


def evaluate_pooled(pooled: pd.DataFrame, *, ci_method: str = "delong", level: float = 0.95,
                    n_boot: int = 2000, seed: int | None = 0) -> pd.DataFrame:
    """metrics.tsv: one row per model and cohort, from :func:`pool_predictions`' output."""
    notes = {m: sorted(set(n for n in part["threshold_note"] if n))
             for m, part in pooled.groupby("model", sort=False)}
    rows = [_row(model, cohort, c["y_true"].to_numpy(), c["probability"].to_numpy(),
                 c["threshold"].to_numpy(), ci_method, level, notes[model], n_boot, seed)
            for model, cohort, c in cohort_predictions(pooled)]
    return pd.DataFrame(rows, columns=["model", "cohort", *SUMMARY_KEYS])


def predictions_table(pooled: pd.DataFrame) -> pd.DataFrame:
    """predictions.tsv: the pooled predictions with their thresholds, sorted by fold, role and
    subject within each model; models keep their order (the config's: single models, then
    fusion), which every table and figure downstream follows."""
    out = pooled.drop(columns="threshold_note", errors="ignore")
    order = {m: i for i, m in enumerate(dict.fromkeys(out["model"]))}
    out = out.assign(_order=out["model"].map(order)).sort_values(["_order", "fold", "role", "subject"])
    return out.drop(columns="_order").reset_index(drop=True)


def evaluate_predictions(
    preds: pd.DataFrame, *, threshold: str | float = "youden", ci_method: str = "delong",
    level: float = 0.95, n_boot: int = 2000, seed: int | None = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (metrics, pooled predictions with their thresholds)."""
    pooled = pool_predictions(preds, threshold)
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
        for cohort, role in (("cv", "test"), ("external", "external")):
            for fold, rows_ in part.groupby("fold", sort=True):
                thr = float(rows_["threshold"].iloc[0])
                note = rows_["threshold_note"].iloc[0] if "threshold_note" in rows_ else ""
                rows_ = rows_[rows_["role"] == role]
                if rows_.empty:
                    if role == "test":
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


def compare_models(pooled: pd.DataFrame, *, correction: str = "holm", level: float = 0.95) -> pd.DataFrame:
    """Paired DeLong comparison of every two models, per cohort (cv pooled test folds, external
    ensemble), on the patients both models predicted; p adjusted within each cohort."""
    if correction not in CORRECTIONS:
        raise EvaluationError(f"unknown correction {correction!r}; choose from {CORRECTIONS}")
    by_cohort: dict[str, dict[str, pd.DataFrame]] = {}
    for model, cohort, frame in cohort_predictions(pooled):
        by_cohort.setdefault(cohort, {})[model] = frame
    tables = []
    for cohort in COHORTS:
        frames = by_cohort.get(cohort, {})
        if len(frames) < 2:
            continue
        wide = _wide(frames)
        models = list(frames)
        parts = []
        for i, a in enumerate(models):
            for b in models[i + 1:]:
                both = wide[[a, b]].notna().all(axis=1)
                sub = wide[both]
                part = compare_aucs(sub["y_true"].to_numpy(), {a: sub[a].to_numpy(), b: sub[b].to_numpy()},
                                    correction="none", level=level)
                if not both.all():
                    extra = f"compared on the {int(both.sum())} of {len(wide)} patients both models predicted"
                    part["note"] = "; ".join(n for n in (part["note"].iloc[0], extra) if n)
                parts.append(part)
        table = pd.concat(parts, ignore_index=True)
        table["p_adjusted"] = adjust_pvalues(table["p"].to_numpy(dtype=float), correction)
        table["correction"] = correction
        table.insert(2, "cohort", cohort)
        tables.append(table)
    columns = ["model_a", "model_b", "cohort", *[c for c in COMPARISON_COLUMNS if c not in ("model_a", "model_b")]]
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns]


def write_table(df: pd.DataFrame, tsv: str | Path, md: str | Path | None = None,
                tex: str | Path | None = None, shown: list[str] | None = None,
                float_format: str = "%.4f") -> None:
    """TSV with every column (``float_format``), and Markdown / LaTeX with the ``shown`` ones."""
    Path(tsv).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(tsv, sep="\t", index=False, float_format=float_format)
    view = df[shown] if shown else df
    if md:
        Path(md).write_text(to_markdown(view))
    if tex:
        Path(tex).write_text(to_latex(view))


def format_p(p: float) -> str:
    """p-value for a paper table: 3 decimals, '<0.001' below, 'NA' when undefined."""
    if p is None or not np.isfinite(p):
        return "NA"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def write_comparisons(table: pd.DataFrame, tables: Path) -> None:
    """comparisons.tsv (every column, 4 significant digits) and .md / .tex (p formatted) in the
    folder ``tables``."""
    tables = Path(tables)
    view = table[SHOWN_COMPARISONS].copy()
    for col in ("p", "p_adjusted"):
        view[col] = [format_p(v) for v in view[col]]
    view = view.rename(columns={"p_adjusted": f"p_adjusted ({table['correction'].iloc[0]})"}) if len(table) else view
    write_table(table, tables / "comparisons.tsv", float_format="%.4g")
    (tables / "comparisons.md").write_text(to_markdown(view))
    (tables / "comparisons.tex").write_text(to_latex(view))


def write_tables(metrics: pd.DataFrame, pooled: pd.DataFrame, tables: Path) -> None:
    """metrics.{tsv,md,tex} and predictions.tsv into the folder ``tables``."""
    tables = Path(tables)
    write_table(metrics, tables / "metrics.tsv", tables / "metrics.md", tables / "metrics.tex", SHOWN)
    tables.mkdir(parents=True, exist_ok=True)
    pooled.to_csv(tables / "predictions.tsv", sep="\t", index=False, float_format="%.6f")


def evaluate_study(preds: pd.DataFrame, tables: Path, *, threshold: str | float = "youden",
                   ci_method: str = "delong", ci_level: float = 0.95, n_boot: int = 2000,
                   seed: int | None = 0) -> pd.DataFrame:
    """Rule evaluate_models: metrics.{tsv,md,tex}, metrics_per_fold.{tsv,md,tex} and
    predictions.tsv in the folder ``tables`` from every fold's predictions. Returns the metrics."""
    tables = Path(tables)
    pooled = pool_predictions(preds, threshold)
    kw = {"ci_method": ci_method, "level": ci_level, "n_boot": n_boot, "seed": seed}
    metrics = evaluate_pooled(pooled, **kw)
    per_fold = per_fold_metrics(pooled, **kw)
    write_tables(metrics, predictions_table(pooled), tables)
    write_table(per_fold, tables / "metrics_per_fold.tsv", tables / "metrics_per_fold.md",
                tables / "metrics_per_fold.tex", SHOWN_PER_FOLD)
    return metrics


def check_evaluate_config(ev: dict[str, Any]) -> None:
    """What the schema cannot check in the ``evaluate`` section (raised while the DAG is built)."""
    from oncoflow.config import ConfigError

    start, stop = ev["dca_range"]
    if not start < stop:
        raise ConfigError(f"config: evaluate.dca_range: start {start} must be below stop {stop}")
    if ev["dca_step"] > stop - start:
        raise ConfigError(f"config: evaluate.dca_step: {ev['dca_step']} is wider than "
                          f"evaluate.dca_range [{start}, {stop}]")
