"""The study's figures (PNG and PDF), drawn from the curve tables of
:func:`oncoflow.metrics.curves.curve_tables` and the metrics table.

One figure per kind (``roc``, ``pr``, ``dca``, ``calibration``). Each has one panel per cohort
(cross-validation: pooled test folds; external: fold-model ensemble, when present) and one line
per model, in the same colour in every figure.

- ROC: the empirical curve, with a shaded pointwise band (``evaluate.ci_level``): stratified bootstrap of sensitivity
  at fixed false-positive rates (pROC's ``ci.se``). The legend gives the AUC with its stratified
  bootstrap interval of the same level, resamples and seed (roc_band.tsv), so the figure shows one
  interval method; metrics.tsv has the configured one (``evaluate.ci_method``).
- PR: precision against recall as the step function average precision integrates (scikit-learn's
  ``average_precision_score``): at each recall the precision where the ranking first reaches it,
  so the curve starts at precision 1 at recall 0 and never drops to the 0 of a top-ranked negative;
  prevalence as the no-skill line; the legend gives average precision.
- Decision curves: net benefit against threshold probability, with treat-all and treat-none.
- Calibration: observed fraction of positives against mean predicted probability per bin, Wilson
  intervals, the diagonal; the legend gives the Brier score.

A curve that is undefined for a cohort (a single class) is not drawn; the panel says why. Sized for
print (3.5 in per panel: a journal column, two panels a page width; PNG at 300 dpi) and for a
1366x768 screen; probability axes span exactly [0, 1].
Drawn with Matplotlib's object API on the Agg canvas (no pyplot, no display needed). The PDF
carries no creation date, so reruns give identical bytes.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from collections.abc import Callable, Mapping

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from oncoflow.metrics.choices import CURVES, FIGURES
from oncoflow.metrics.choices import MIN_CALIBRATION_EVENTS

COHORT_TITLES = {"cv": "Cross-validation (pooled test folds)", "external": "External cohort (fold-model ensemble)"}
RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
      "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False}
PANEL_WIDTH = 3.5  # inches: one journal column per panel
UNIT = (0.0, 1.0)  # a probability axis


def cohort_title(cohort: str) -> str:
    """Panel title of a metrics cohort (cv, external, or external:<name> of several)."""
    if cohort.startswith("external:"):
        return f"External cohort {cohort.split(':', 1)[1]} (fold-model ensemble)"
    return COHORT_TITLES.get(cohort, cohort)


def model_colors(models: list[str]) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10" if len(models) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(models)}


def _fmt(x: float, digits: int = 2) -> str:
    return "NA" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _panel_title(ax: Axes, cohort: str, metrics: pd.DataFrame) -> None:
    rows = metrics[metrics["cohort"] == cohort]
    n, n_pos = (int(rows["n"].iloc[0]), int(rows["n_pos"].iloc[0])) if len(rows) else (0, 0)
    ax.set_title(f"{cohort_title(cohort)}\nn = {n}, {n_pos} positive", loc="left")


def _undefined(ax: Axes, notes: list[str], drawn: int) -> None:
    """Say which models are not drawn and why (centred when nothing is drawn)."""
    if not notes:
        return
    reasons = sorted(set(notes))
    if drawn == 0:
        ax.text(0.5, 0.5, "\n".join("\n".join(textwrap.wrap(r, 40)) for r in reasons), ha="center", va="center",
                transform=ax.transAxes, fontsize=7, bbox={"facecolor": "white", "edgecolor": "0.7"})
    else:
        ax.text(0.02, 0.02, "not drawn: " + "; ".join(reasons), transform=ax.transAxes, fontsize=7,
                color="0.35", va="bottom")


def _legend(ax: Axes) -> None:
    """Below the panel, so it never hides a curve."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), frameon=False, borderaxespad=0.0)


def _metric(metrics: pd.DataFrame, model: str, cohort: str, key: str) -> float:
    row = metrics[(metrics["model"] == model) & (metrics["cohort"] == cohort)]
    return float(row[key].iloc[0]) if len(row) else float("nan")


def _draw_roc(ax: Axes, cohort: str, curves: Mapping[str, pd.DataFrame], metrics: pd.DataFrame,
              colors: dict) -> None:
    roc, band = curves["roc"], curves["roc_band"]
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="chance")
    notes, drawn = [], 0
    alpha = min(0.15, 0.5 / max(len(colors), 1))  # overlapping bands stay readable
    for model, color in colors.items():
        pts = roc[(roc["model"] == model) & (roc["cohort"] == cohort)]
        if pts.empty:
            continue
        if pts["note"].iloc[0]:
            notes.append(pts["note"].iloc[0])
            continue
        b = band[(band["model"] == model) & (band["cohort"] == cohort)]
        if b["tpr_low"].notna().any():
            ax.fill_between(b["fpr"], b["tpr_low"], b["tpr_high"], color=color, alpha=alpha, lw=0)
        auc = _metric(metrics, model, cohort, "auc")
        lo, hi = (float(b[k].iloc[0]) if k in b and len(b) else float("nan") for k in ("auc_ci_low", "auc_ci_high"))
        ax.plot(pts["fpr"], pts["tpr"], color=color, lw=1.4, clip_on=False,
                label=f"{model}  AUC {_fmt(auc)} [{_fmt(lo)}, {_fmt(hi)}]")
        drawn += 1
    _undefined(ax, notes, drawn)
    ax.set(xlim=UNIT, ylim=UNIT, xlabel="1 − specificity (false-positive rate)", ylabel="Sensitivity")
    _legend(ax)


def _draw_pr(ax: Axes, cohort: str, curves: Mapping[str, pd.DataFrame], metrics: pd.DataFrame,
             colors: dict) -> None:
    pr = curves["pr"]
    notes, drawn, prevalence = [], 0, None
    for model, color in colors.items():
        pts = pr[(pr["model"] == model) & (pr["cohort"] == cohort)]
        if pts.empty:
            continue
        prevalence = float(pts["prevalence"].iloc[0])
        if pts["note"].iloc[0]:
            notes.append(pts["note"].iloc[0])
            continue
        ap = _metric(metrics, model, cohort, "auprc")
        steps = pts[~pts["recall"].duplicated(keep="first")]  # rows run down the thresholds
        ax.plot(steps["recall"], steps["precision"], drawstyle="steps-pre", color=color, lw=1.4,
                clip_on=False, label=f"{model}  AP {_fmt(ap)}")
        drawn += 1
    if prevalence is not None and drawn:
        ax.axhline(prevalence, ls="--", lw=0.8, color="0.6", label=f"no skill (prevalence {prevalence:.2f})")
    _undefined(ax, notes, drawn)
    ax.set(xlim=UNIT, ylim=UNIT, xlabel="Recall (sensitivity)", ylabel="Precision (PPV)")
    _legend(ax)


def _draw_dca(ax: Axes, cohort: str, curves: Mapping[str, pd.DataFrame], metrics: pd.DataFrame,
              colors: dict) -> None:
    dca = curves["dca"]
    part = dca[dca["cohort"] == cohort]
    if part.empty:
        return
    ref = part[part["model"] == part["model"].iloc[0]]
    ax.plot(ref["threshold"], ref["treat_all"], color="0.55", lw=2.2, label="treat all")
    ax.plot(ref["threshold"], ref["treat_none"], color="black", lw=1.2, label="treat none")
    top = 0.0
    for model, color in colors.items():
        pts = part[part["model"] == model]
        if pts.empty:
            continue
        ax.plot(pts["threshold"], pts["net_benefit"], color=color, lw=1.6, label=model)
        top = max(top, float(pts["net_benefit"].max()))
    top = max(top, float(ref["treat_all"].max()), 0.05)
    ax.set(xlim=(float(part["threshold"].min()), float(part["threshold"].max())),
           ylim=(-0.05 - 0.1 * top, top * 1.15 + 0.01), xlabel="Threshold probability",
           ylabel="Net benefit")
    _legend(ax)


def _draw_calibration(ax: Axes, cohort: str, curves: Mapping[str, pd.DataFrame],
                      metrics: pd.DataFrame, colors: dict) -> None:
    cal = curves["calibration"]
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="perfect calibration")
    k = len(colors)
    unassessable = False
    for i, (model, color) in enumerate(colors.items()):
        pts = cal[(cal["model"] == model) & (cal["cohort"] == cohort)]
        if pts.empty:
            continue
        # dodge the error bars, never off the probability axis
        x = np.clip(pts["mean_predicted"].to_numpy() + (i - (k - 1) / 2) * 0.004, *UNIT)
        y = pts["observed"].to_numpy()
        err = np.clip(np.vstack([y - pts["observed_ci_low"].to_numpy(),
                                 pts["observed_ci_high"].to_numpy() - y]), 0.0, None)
        brier = _metric(metrics, model, cohort, "brier")
        assessable = _assessable(metrics, model, cohort)
        unassessable |= not assessable
        ax.errorbar(x, y, yerr=err, color=color, marker="o", ms=4, lw=1.4, elinewidth=0.7,
                    capsize=2, alpha=0.9 if assessable else 0.35, clip_on=False,
                    label=f"{model}  Brier {_fmt(brier, 3)}" + ("" if assessable else "  (not assessable)"))
    if unassessable:
        ax.text(0.5, 0.97, f"calibration not assessable: fewer than {MIN_CALIBRATION_EVENTS} events\n"
                "(Collins et al. 2016); bins shown as description only", transform=ax.transAxes,
                ha="center", va="top", fontsize=8, color="0.25",
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7"})
    ax.set(xlim=UNIT, ylim=UNIT, xlabel="Mean recalibrated risk (per bin)", ylabel="Observed fraction positive")
    _legend(ax)


def _assessable(metrics: pd.DataFrame, model: str, cohort: str) -> bool:
    """metrics.tsv's calibration_assessable of this model and cohort (true when the table lacks it)."""
    if "calibration_assessable" not in metrics.columns:
        return True
    row = metrics[(metrics["model"] == model) & (metrics["cohort"] == cohort)]
    return row.empty or str(row["calibration_assessable"].iloc[0]).lower() == "true"


DRAW: dict[str, tuple[str, Callable]] = {
    "roc": ("ROC curves: pointwise {level} bootstrap band,\nAUC with its {level} bootstrap interval", _draw_roc),
    "pr": ("Precision-recall curves", _draw_pr),
    "dca": ("Decision curves", _draw_dca),
    "calibration": ("Calibration: bins with\nWilson {level} intervals", _draw_calibration),
}
LEVEL_OF = {"roc": "roc_band", "calibration": "calibration"}


def _title(kind: str, curves: Mapping[str, pd.DataFrame]) -> str:
    table = curves.get(LEVEL_OF.get(kind, ""))
    level = "95%"
    if table is not None and "level" in table and len(table):
        level = f"{100 * float(table['level'].iloc[0]):g}%"
    return DRAW[kind][0].format(level=level)


def draw_figure(kind: str, curves: Mapping[str, pd.DataFrame], metrics: pd.DataFrame) -> Figure:
    """The figure of one kind: a panel per cohort in ``metrics`` (cv, then external)."""
    if kind not in DRAW:
        raise ValueError(f"unknown figure {kind!r}; choose from {FIGURES}")
    if metrics.empty:
        raise ValueError("no models to plot: the metrics table is empty")
    cohorts = sorted(dict.fromkeys(metrics["cohort"]), key=lambda c: c != "cv")  # cv, then each external
    colors = model_colors(list(dict.fromkeys(metrics["model"])))
    title, draw = _title(kind, curves), DRAW[kind][1]
    with matplotlib.rc_context(RC):
        n_models = len(colors)
        fig = Figure(figsize=(PANEL_WIDTH * len(cohorts), 4.2 + 0.12 * n_models), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(cohorts), squeeze=False)[0]
        for ax, cohort in zip(axes, cohorts):
            draw(ax, cohort, curves, metrics, colors)
            _panel_title(ax, cohort, metrics)
            ax.grid(True, lw=0.4, color="0.9")
        fig.suptitle(title, fontsize=9, fontweight="bold")
    return fig


def save_figure(fig: Figure, png: str | Path, pdf: str | Path, dpi: int = 300) -> None:
    for path in (png, pdf):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None, "Producer": None, "Creator": None})


def plot_figures(curves: Mapping[str, pd.DataFrame], metrics: pd.DataFrame,
                 out: Mapping[str, tuple[str | Path, str | Path]]) -> None:
    """Write every figure in ``out`` (kind -> (png, pdf))."""
    for kind, (png, pdf) in out.items():
        save_figure(draw_figure(kind, curves, metrics), png, pdf)


def read_curves(folder: Path) -> dict[str, pd.DataFrame]:
    """The curve tables (``folder/<name>.tsv``, as write_curves wrote them) by name; ``note`` is ''
    where empty."""
    tables = {}
    for name in CURVES:
        table = pd.read_csv(Path(folder) / f"{name}.tsv", sep="\t")
        table["note"] = ["" if pd.isna(v) else str(v) for v in table["note"]]  # '' reads back as NaN
        tables[name] = table
    return tables


def plot_study(curves: Path, metrics: Path, figures: Path) -> None:
    """Rule plot_curves: from the curve tables in the folder ``curves`` and the metrics table,
    ``figures/<kind>.png`` and ``.pdf`` for each kind in :data:`FIGURES`."""
    figures = Path(figures)
    plot_figures(read_curves(curves), pd.read_csv(metrics, sep="\t"),
                 {kind: (figures / f"{kind}.png", figures / f"{kind}.pdf") for kind in FIGURES})
