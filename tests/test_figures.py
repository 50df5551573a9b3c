"""oncoflow.report.figures: every figure is written as PNG and PDF, with a panel per cohort and
a line per model, reproducibly; a cohort whose curve is undefined gets a panel that says why."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from test_evaluate import cv_predictions

from oncoflow.metrics.curves import CURVES, write_curves
from oncoflow.metrics.evaluate import evaluate_pooled, pool_predictions
from oncoflow.report.figures import (FIGURES, draw_figure, model_colors, plot_study, read_curves,
                                     save_figure)


def study(tmp_path, pooled: pd.DataFrame) -> tuple[SimpleNamespace, SimpleNamespace]:
    """The rule's inputs (curve tables, metrics) and outputs, as plot_curves sees them."""
    inputs = SimpleNamespace(**{name: tmp_path / f"{name}.tsv" for name in CURVES},
                             metrics=tmp_path / "metrics.tsv", folder=tmp_path)
    write_curves(pooled, tmp_path, dca_range=(0.05, 0.95), dca_step=0.01, n_boot=50)
    evaluate_pooled(pooled).to_csv(inputs.metrics, sep="\t", index=False)
    outputs = SimpleNamespace(**{f"{kind}_{ext}": tmp_path / "figures" / f"{kind}.{ext}"
                                 for kind in FIGURES for ext in ("png", "pdf")})
    return inputs, outputs


@pytest.fixture(scope="module")
def pooled() -> pd.DataFrame:
    return pool_predictions(cv_predictions(models=("t1ce_resnet18", "flair_resnet18", "fusion_mean")))


def test_every_figure_as_png_and_pdf(tmp_path, pooled):
    inputs, outputs = study(tmp_path, pooled)
    plot_study(inputs.folder, inputs.metrics, inputs.folder / "figures")
    for kind in FIGURES:
        png = imread(getattr(outputs, f"{kind}_png"))
        assert png.shape[0] > 600 and png.shape[1] > 1200, kind  # two panels side by side, legible
        pdf = getattr(outputs, f"{kind}_pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf
    # a rerun gives the same bytes
    again = draw_figure("roc", read_curves(inputs.folder), pd.read_csv(inputs.metrics, sep="\t"))
    save_figure(again, tmp_path / "again.png", tmp_path / "again.pdf")
    assert (tmp_path / "again.pdf").read_bytes() == outputs.roc_pdf.read_bytes()
    assert (tmp_path / "again.png").read_bytes() == outputs.roc_png.read_bytes()


def test_panels_lines_and_legends(tmp_path, pooled):
    inputs, _ = study(tmp_path, pooled)
    curves, metrics = read_curves(inputs.folder), pd.read_csv(inputs.metrics, sep="\t")
    roc = draw_figure("roc", curves, metrics)
    assert len(roc.axes) == 2
    cv, ext = roc.axes
    assert cv.get_title(loc="left").startswith("Cross-validation") and "n = 30" in cv.get_title(loc="left")
    assert ext.get_title(loc="left").startswith("External")
    labels = [t.get_text() for t in cv.get_legend().get_texts()]
    auc = metrics.set_index(["model", "cohort"]).loc[("t1ce_resnet18", "cv"), "auc"]
    assert f"t1ce_resnet18  AUC {auc:.2f}" in " ".join(labels)
    assert len(cv.collections) == 3  # one band per model
    dca = draw_figure("dca", curves, metrics)
    assert [t.get_text() for t in dca.axes[0].get_legend().get_texts()][:2] == ["treat all", "treat none"]
    # same colour for a model in every figure
    colors = model_colors(list(dict.fromkeys(metrics["model"])))
    line = next(ln for ln in dca.axes[0].get_lines() if ln.get_label() == "flair_resnet18")
    assert tuple(line.get_color()) == tuple(colors["flair_resnet18"])
    # without an external cohort: one panel
    internal = pooled[pooled["role"] != "external"]
    inputs_cv, _ = study(tmp_path / "cv", internal)
    fig = draw_figure("calibration", read_curves(inputs_cv.folder), pd.read_csv(inputs_cv.metrics, sep="\t"))
    assert len(fig.axes) == 1


def test_undefined_curves_are_explained_not_drawn(tmp_path, pooled):
    one_class = pooled.copy()
    one_class.loc[one_class["role"] == "external", "y_true"] = 0
    inputs, outputs = study(tmp_path, one_class)
    plot_study(inputs.folder, inputs.metrics, inputs.folder / "figures")  # no crash
    fig = draw_figure("roc", read_curves(inputs.folder), pd.read_csv(inputs.metrics, sep="\t"))
    ext = fig.axes[1]
    texts = [t.get_text() for t in ext.texts]
    assert any("roc undefined: only negatives" in t for t in texts)
    assert [ln.get_label() for ln in ext.get_lines()] == ["chance"]  # no model curve


def test_bad_requests_raise(tmp_path, pooled):
    inputs, _ = study(tmp_path, pooled)
    curves = read_curves(inputs.folder)
    with pytest.raises(ValueError, match="unknown figure 'box'"):
        draw_figure("box", curves, pd.read_csv(inputs.metrics, sep="\t"))
    with pytest.raises(ValueError, match="metrics table is empty"):
        draw_figure("roc", curves, pd.read_csv(inputs.metrics, sep="\t").iloc[:0])
    assert np.isfinite(curves["dca"]["net_benefit"]).all()


def test_titles_follow_the_configured_level(tmp_path, pooled):
    inputs = SimpleNamespace(**{name: tmp_path / f"{name}.tsv" for name in CURVES},
                             metrics=tmp_path / "metrics.tsv", folder=tmp_path)
    write_curves(pooled, tmp_path, dca_range=(0.1, 0.9), dca_step=0.1, n_boot=20, level=0.9)
    evaluate_pooled(pooled, level=0.9).to_csv(inputs.metrics, sep="\t", index=False)
    curves, metrics = read_curves(inputs.folder), pd.read_csv(inputs.metrics, sep="\t")
    assert "pointwise 90% bootstrap band" in draw_figure("roc", curves, metrics)._suptitle.get_text()
    assert "Wilson 90% intervals" in draw_figure("calibration", curves, metrics)._suptitle.get_text()


def test_one_interval_method_per_roc_figure(tmp_path, pooled):
    """The ROC legend's AUC interval is the bootstrap interval of the band's resamples (roc_band.tsv),
    not metrics.tsv's DeLong one, and the title names it."""
    inputs, _ = study(tmp_path, pooled)
    curves, metrics = read_curves(inputs.folder), pd.read_csv(inputs.metrics, sep="\t")
    band = curves["roc_band"].set_index(["model", "cohort"])
    fig = draw_figure("roc", curves, metrics)
    labels = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    low, high = band.loc[("t1ce_resnet18", "cv"), ["auc_ci_low", "auc_ci_high"]].iloc[0]
    delong = metrics.set_index(["model", "cohort"]).loc[("t1ce_resnet18", "cv")]
    assert f"[{low:.2f}, {high:.2f}]" in labels
    assert (round(low, 2), round(high, 2)) != (round(delong["auc_ci_low"], 2), round(delong["auc_ci_high"], 2))
    assert "AUC with its 95% bootstrap interval" in fig._suptitle.get_text()


def test_pr_curve_starts_at_precision_one_and_axes_stay_in_the_unit_square(tmp_path, pooled):
    """A negative ranked first puts (recall 0, precision 0) into pr.tsv; the figure draws the
    step function of average precision (precision 1 at recall 0, as scikit-learn's AP), and no
    probability axis or point leaves [0, 1] (calibration's dodged points included)."""
    top = pooled.copy()
    cv = (top["model"] == "t1ce_resnet18") & (top["role"] != "external")
    negative = top[cv & (top["y_true"] == 0)].index[0]
    top.loc[negative, "probability"] = 0.9999
    inputs, _ = study(tmp_path, top)
    curves, metrics = read_curves(inputs.folder), pd.read_csv(inputs.metrics, sep="\t")
    pr = curves["pr"]
    start = pr[(pr["model"] == "t1ce_resnet18") & (pr["cohort"] == "cv") & (pr["recall"] == 0)]
    assert sorted(start["precision"]) == [0.0, 1.0]  # the data keep both points
    fig = draw_figure("pr", curves, metrics)
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("t1ce_resnet18"))
    x, y = line.get_xdata(), line.get_ydata()
    assert (y[x == 0] == 1.0).all()
    for kind in ("roc", "pr", "calibration"):
        for ax in draw_figure(kind, curves, metrics).axes:
            assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0), kind
            for ln in ax.get_lines():
                xy = np.asarray(ln.get_xydata(), dtype=float)
                assert np.nanmin(xy) >= 0.0 and np.nanmax(xy) <= 1.0, (kind, ln.get_label())


def test_figures_fit_a_journal_page_and_a_laptop_screen(tmp_path, pooled):
    """3.5 in (a journal column) per panel, two panels a page width; landscape enough that the
    report scales a two-panel figure to a 1366x768 screen with its legends readable."""
    inputs, _ = study(tmp_path, pooled)
    curves, metrics = read_curves(inputs.folder), pd.read_csv(inputs.metrics, sep="\t")
    for kind in FIGURES:
        width, height = draw_figure(kind, curves, metrics).get_size_inches()
        assert width == 7.0 and height <= 5.2, (kind, width, height)
