"""The data behind the study's figures: ROC (with a bootstrap band and the AUC's bootstrap interval
in roc_band.tsv, so the ROC figure shows one interval method), precision-recall, decision
and calibration curves per model and cohort (cv pooled test folds, external fold-model ensemble).
ROC and precision-recall rank the raw probabilities; decision and calibration curves use the
recalibrated ``risk`` (oncoflow.metrics.recalibration), since they read the values as risks.

Each table starts with ``model, cohort``. A curve that is undefined for a cohort (e.g. ROC with a
single class) keeps its rows with NaN values and says why in ``note``. Nothing is dropped
silently.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oncoflow import atomic
from oncoflow.metrics._validation import MetricWarning, single_class_reason
from oncoflow.metrics.calibration import calibration_curve
from oncoflow.metrics.choices import CURVES
from oncoflow.metrics.decision import decision_curve, threshold_grid
from oncoflow.metrics.evaluate import cohort_predictions
from oncoflow.metrics.roc import auc_ci, pr_curve_points, roc_band, roc_curve_points

def _with_note(frame: pd.DataFrame, model: str, cohort: str, note: str) -> pd.DataFrame:
    frame.insert(0, "cohort", cohort)
    frame.insert(0, "model", model)
    frame["note"] = note
    return frame


def curve_tables(pooled: pd.DataFrame, *, dca_thresholds: np.ndarray, calibration_bins: int = 5,
                 calibration_strategy: str = "quantile", level: float = 0.95, n_boot: int = 2000,
                 seed: int | None = 0) -> dict[str, pd.DataFrame]:
    """{name: table} for every name in :data:`CURVES`, from :func:`pool_predictions`' output."""
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in CURVES}
    for model, cohort, c in cohort_predictions(pooled):
        y = c["y_true"].to_numpy().astype(bool)
        p = c["probability"].to_numpy(dtype=float)
        risk = c["risk"].to_numpy(dtype=float)
        reason = single_class_reason(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)  # the reason goes into `note`
            fpr, tpr, thr = roc_curve_points(y, p)
            parts["roc"].append(_with_note(pd.DataFrame({"threshold": thr, "fpr": fpr, "tpr": tpr}),
                                           model, cohort, f"roc undefined: {reason}" if reason else ""))
            # the figure's AUC interval: the band's method, level, resamples and seed
            _, low, high = auc_ci(y, p, "bootstrap", level, n_boot, seed) if not reason else (0, np.nan, np.nan)
            band = roc_band(y, p, level=level, n_boot=n_boot, seed=seed).assign(
                level=level, auc_ci_low=low, auc_ci_high=high)
            parts["roc_band"].append(_with_note(band, model, cohort,
                                                f"roc band undefined: {reason}" if reason else ""))
            recall, precision, thr = pr_curve_points(y, p)
            no_pos = "" if y.any() else f"pr curve undefined: no positive cases (n={y.size})"
            parts["pr"].append(_with_note(pd.DataFrame({"threshold": thr, "recall": recall,
                                                        "precision": precision,
                                                        "prevalence": y.mean()}), model, cohort, no_pos))
        parts["dca"].append(_with_note(decision_curve(y, risk, dca_thresholds), model, cohort, ""))
        parts["calibration"].append(_with_note(
            calibration_curve(y, risk, n_bins=calibration_bins, strategy=calibration_strategy,
                              level=level).assign(level=level),
            model, cohort, ""))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def write_curves(pooled: pd.DataFrame, folder: Path, *, dca_range: tuple[float, float], dca_step: float,
                 **kwargs: Any) -> dict[str, pd.DataFrame]:
    """Rule compute_curves: every table of :func:`curve_tables` as ``folder/<name>.tsv``."""
    tables = curve_tables(pooled, dca_thresholds=threshold_grid(*dca_range, dca_step), **kwargs)
    Path(folder).mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        atomic.write_table(table, Path(folder) / f"{name}.tsv", index=False, float_format="%.6g")
    return tables
