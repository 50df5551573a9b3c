"""The evaluation table of a cross-validated study: one row per model and cohort.

- ``cv``: every internal patient once, predicted by the fold model that never saw it; AUC on the
  pooled probabilities; sensitivity etc. with each fold's own threshold.
- ``external``: the mean probability of the fold models (an ensemble); the threshold is the mean of
  the fold thresholds.
Thresholds are fitted on each fold's inner-validation patients only (Youden), or fixed by config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oncoflow.metrics.classification import threshold_metrics, youden_threshold
from oncoflow.metrics.summary import SUMMARY_KEYS, summarize
from oncoflow.metrics.tables import to_latex, to_markdown

THRESHOLD_KEYS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")


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
            if val["y_true"].nunique() < 2:
                note = f"fold {fold}: single-class validation set, threshold 0.5"
            else:
                thr = youden_threshold(val["y_true"].to_numpy(), val["probability"].to_numpy())
                if not np.isfinite(thr):
                    thr, note = 0.5, f"fold {fold}: constant validation scores, threshold 0.5"
        rows.append({"model": model, "fold": fold, "threshold": thr, "threshold_note": note})
    return pd.DataFrame(rows)


def _row(model: str, cohort: str, y: np.ndarray, p: np.ndarray, thr: np.ndarray,
         ci_method: str, level: float, notes: list[str]) -> dict[str, Any]:
    row = summarize(y, p, threshold=0.5, ci_method=ci_method, level=level)
    # Per-patient thresholds: shift each probability by its fold's threshold, then cut at 0.5.
    tm = threshold_metrics(y, np.clip(p - thr + 0.5, 0, 1), 0.5)
    row.update({k: tm[k] for k in THRESHOLD_KEYS})
    row["threshold"] = float(np.mean(thr))
    row["note"] = "; ".join(n for n in [tm["note"], row["note"], *notes] if n)
    return {"model": model, "cohort": cohort, **row}


def evaluate_predictions(
    preds: pd.DataFrame, *, threshold: str | float = "youden", ci_method: str = "delong",
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (metrics, pooled predictions with their thresholds)."""
    thresholds = fold_thresholds(preds, threshold)
    pooled = preds.merge(thresholds, on=["model", "fold"], validate="m:1")
    rows = []
    for model, part in pooled.groupby("model", sort=False):
        notes = sorted(set(n for n in part["threshold_note"] if n))
        test = part[part["role"] == "test"]
        if test["subject"].duplicated().any():
            raise ValueError(f"{model}: a subject is in the test set of several folds")
        rows.append(_row(model, "cv", test["y_true"].to_numpy(), test["probability"].to_numpy(),
                         test["threshold"].to_numpy(), ci_method, level, notes))
        ext = part[part["role"] == "external"]
        if len(ext):
            ens = ext.groupby("subject").agg(y_true=("y_true", "first"),
                                             probability=("probability", "mean"),
                                             threshold=("threshold", "mean"))
            rows.append(_row(model, "external", ens["y_true"].to_numpy(),
                             ens["probability"].to_numpy(), ens["threshold"].to_numpy(),
                             ci_method, level, notes))
    metrics = pd.DataFrame(rows, columns=["model", "cohort", *SUMMARY_KEYS])
    pooled = pooled.drop(columns="threshold_note").sort_values(["model", "fold", "role", "subject"])
    return metrics, pooled.reset_index(drop=True)


def write_tables(metrics: pd.DataFrame, pooled: pd.DataFrame, out: Any) -> None:
    for path in (out.metrics, out.predictions):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(out.metrics, sep="\t", index=False, float_format="%.4f")
    pooled.to_csv(out.predictions, sep="\t", index=False, float_format="%.6f")
    shown = metrics[["model", "cohort", "n", "accuracy", "sensitivity", "specificity", "auc",
                     "auc_ci_low", "auc_ci_high"]]
    Path(out.metrics_md).write_text(to_markdown(shown))
    Path(out.metrics_tex).write_text(to_latex(shown))
