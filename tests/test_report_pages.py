"""oncoflow.report.pages: the report's table pages and its landing block (summary.html), from
real evaluation output of simulated predictions."""

from __future__ import annotations

import base64

import pandas as pd
import pytest
from test_evaluate import cv_predictions

from oncoflow.metrics.evaluate import evaluate_pooled, pool_predictions, write_tables
from oncoflow.report.pages import headline_table, summary_html, write_report_pages

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    return evaluate_pooled(pool_predictions(cv_predictions(models=("t1ce_resnet18", "flair+t1ce_resnet18"))))


def test_headline_table_copies_the_metrics(metrics):
    table = headline_table(metrics)
    assert list(table.columns) == ["model", "cohort", "n (positive)", "AUC [CI]", "sensitivity",
                                   "specificity", "calibration slope", "Brier"]
    row, source = table.iloc[0], metrics.iloc[0]
    assert row["AUC [CI]"] == f"{source['auc']:.2f} [{source['auc_ci_low']:.2f}, {source['auc_ci_high']:.2f}]"
    assert row["n (positive)"] == f"{source['n']} ({source['n_pos']})"
    assert set(table["cohort"]) == {"cv", "external"}


def test_summary_embeds_figures_and_lists_cv_first(metrics, tmp_path):
    (tmp_path / "roc.png").write_bytes(PNG)
    (tmp_path / "pr.png").write_bytes(PNG)
    external_first = metrics.sort_values("cohort", ascending=False)
    page = summary_html(external_first, {"pr": tmp_path / "pr.png", "roc": tmp_path / "roc.png"}, study="demo",
                        label="idh", positive="mutant", ci="95% DeLong")
    assert page.startswith('<div class="oncoflow-summary">') and "95% DeLong interval" in page
    assert page.count("data:image/png;base64,") == 2
    assert page.index('alt="roc figure"') < page.index('alt="pr figure"')  # ROC beside the table
    assert page.index("<td>cv</td>") < page.index("<td>external</td>")
    assert "flair+t1ce_resnet18" in page


def test_table_pages_render_the_readable_views(metrics, tmp_path):
    pooled = pool_predictions(cv_predictions(models=("t1ce_resnet18",)))
    write_tables(metrics, pooled, tmp_path)
    qc = tmp_path / "qc.tsv"
    pd.DataFrame({"subject": ["demo001", "demo002"], "flag": ["flair: outlier <x>", ""],
                  "brain_ml": [1200.5, 1300.25]}).to_csv(qc, sep="\t", index=False)
    checklist = tmp_path / "checklist_claim.md"
    checklist.write_text("# CLAIM 2024\n\n| item | status |\n|:--|:--|\n| 1 | filled |\n")
    out = {name: tmp_path / f"{name}.html" for name in ("metrics", "qc", "checklists", "summary")}
    (tmp_path / "roc.png").write_bytes(PNG)
    write_report_pages({out["metrics"]: ("Metrics", tmp_path / "metrics.md", "All columns: metrics.tsv."),
                        out["qc"]: ("QC", qc, "")}, [checklist], out["checklists"], out["summary"],
                       metrics=tmp_path / "metrics.tsv", figures={"roc": tmp_path / "roc.png"}, study="demo",
                       label="label", positive="1", ci="95% DeLong")
    page = out["metrics"].read_text()
    assert page.startswith("<!DOCTYPE html>") and "<h1>Metrics</h1>\n<p>All columns: metrics.tsv.</p>" in page
    assert '<th class="num">pooled AUC</th>' in page  # numbers right-aligned, as in metrics.md
    assert f"{metrics['auc'].iloc[0]:.3f}" in page
    qc_page = out["qc"].read_text()
    assert "flair: outlier &lt;x&gt;" in qc_page and "<td></td>" in qc_page  # an empty flag stays empty
    assert '<td class="num">1200.5</td>' in qc_page  # no exponent for a volume
    assert "<h1>CLAIM 2024</h1>" in out["checklists"].read_text()


def test_the_failure_page_embeds_its_overlays_at_half_size(tmp_path):
    """The report embeds each shown overlay at full size under "Explanation maps"; the failure page
    carries a half-size copy (a quarter of the bytes), not a second full one."""
    import base64
    import io
    import re

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    yy, xx = np.mgrid[:64, :64]  # an overlay's smooth map over a smooth image
    ax.imshow(np.exp(-((yy - 30) ** 2 + (xx - 36) ** 2) / 200), cmap="gray", interpolation="bilinear")
    ax.imshow(np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / 90), cmap="inferno", alpha=0.5, interpolation="bilinear")
    (tmp_path / "maps").mkdir()
    fig.savefig(tmp_path / "maps" / "demo003.png")
    plt.close(fig)
    md = tmp_path / "failures.md"
    md.write_text("# Failure analysis\n\n- demo003: false positive; maps: ![demo003](maps/demo003.png)\n")
    out = {name: tmp_path / f"{name}.html" for name in ("failures", "full", "checklists", "summary")}
    metrics = pd.DataFrame({"model": ["m"], "cohort": ["cv"], "n": [4], "n_pos": [2], "auc": [0.5], "auc_ci_low": [0.1],
                            "auc_ci_high": [0.9], "sensitivity": [0.5], "specificity": [0.5], "cal_slope": [1.0],
                            "brier": [0.25]})
    metrics.to_csv(tmp_path / "metrics.tsv", sep="\t", index=False)
    write_report_pages({out["failures"]: ("Failure analysis", md, ""), out["full"]: ("Same", md, "")}, [],
                       out["checklists"], out["summary"], metrics=tmp_path / "metrics.tsv", figures={},
                       study="demo", label="label", positive="1", ci="95% DeLong", half_size_images=[out["failures"]])

    def embedded(page):
        data = re.search(r'src="data:image/png;base64,([^"]+)"', page.read_text()).group(1)
        return base64.b64decode(data)

    full, half = embedded(out["full"]), embedded(out["failures"])
    assert full == (tmp_path / "maps" / "demo003.png").read_bytes()
    small, big = mpimg.imread(io.BytesIO(half)), mpimg.imread(io.BytesIO(full))
    assert small.shape[:2] == (250, 400) and big.shape[:2] == (500, 800)
    assert len(half) < 0.5 * len(full)
    np.testing.assert_allclose(small[..., :3].mean(), big[..., :3].mean(), atol=0.01)  # the same picture, smaller
