"""End to end, on the shared finished tiny run (conftest.finished_run): the evaluation outputs
(per-fold metrics, pairwise comparisons, figures) exist and hold what they should, and
`snakemake --report` builds the HTML report from them, which a real browser (headless Chromium,
when installed) opens on the study's headline table and figures without a script error."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.image import imread
from workflow_helpers import run_snakemake

pytestmark = pytest.mark.slow

RESULTS = Path("results/demo")
MODELS = {"t1ce_resnet18", "flair_resnet18", "flair+t1ce_resnet18", "fusion_mean", "fusion_lr", "baseline"}


def test_per_fold_metrics_and_comparisons(finished_run: Path) -> None:
    tables = finished_run / RESULTS / "tables"
    per_fold = pd.read_csv(tables / "metrics_per_fold.tsv", sep="\t")
    assert set(zip(per_fold["model"], per_fold["fold"], per_fold["cohort"])) == {
        (m, f, c) for m in MODELS for f in range(3) for c in ("cv", "external")}
    cv = per_fold[per_fold["cohort"] == "cv"]
    assert (cv.groupby("model")["n"].sum() == 12).all()  # the folds' test sets cover the cohort
    comparisons = pd.read_csv(tables / "comparisons.tsv", sep="\t", keep_default_na=True)
    assert list(comparisons.columns[:3]) == ["model_a", "model_b", "cohort"]
    for column in ("n", "auc_a", "auc_b", "delta", "z", "p", "p_adjusted", "correction"):
        assert column in comparisons.columns
    assert len(comparisons) == 2 * 5  # the pre-specified family: each of 5 models vs baseline, cv and external
    assert set(comparisons["model_b"]) == {"baseline"} and (comparisons["family"] == "pre-specified").all()
    exploratory = pd.read_csv(tables / "comparisons_exploratory.tsv", sep="\t")
    assert len(exploratory) == 2 * 15  # every pair of 6 models, in cv and external
    assert (comparisons["correction"] == "holm").all()
    assert (comparisons.loc[comparisons["cohort"] == "cv", "n"] == 12).all()
    # a NaN p (e.g. a single-class external cohort) always comes with its reason
    undefined = comparisons[comparisons["p"].isna()]
    assert undefined["note"].notna().all()
    assert (tables / "comparisons.md").read_text().startswith("| model_a")


def test_figures_and_their_data(finished_run: Path) -> None:
    figures = finished_run / RESULTS / "figures"
    for kind in ("roc", "pr", "dca", "calibration"):
        assert imread(figures / f"{kind}.png").shape[1] > 1000, kind
        assert (figures / f"{kind}.pdf").read_bytes().startswith(b"%PDF")
        data = pd.read_csv(figures / f"{kind}.tsv", sep="\t")
        assert set(data["model"]) == MODELS, kind
    assert len(pd.read_csv(figures / "roc_band.tsv", sep="\t")) == len(MODELS) * 2 * 101


def test_report_builds(finished_run: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = run_snakemake(finished_run, "--report", str(report), timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    html = report.read_text()
    for expected in ("metrics.tsv", "metrics_per_fold.tsv", "comparisons.tsv", "roc.png", "dca.png",
                     "calibration.png", "pr.png", "pointwise", "demo001.png", "qc.tsv",
                     "methods.html", "flow.png",
                     "characteristics.tsv", "failures.tsv", "checklist_claim.tsv", "checklist_tripod_ai.tsv",
                     "model_card.html", "metrics.html", "metrics_per_fold.html", "comparisons.html",
                     "characteristics.html", "failures.html", "checklists.html", "qc.html", "summary.html"):
        assert expected in html, expected
    # category "Explanation maps": the sanity table and, per CNN, the overlays of up to 10 of its misclassified
    # test patients and explain.report_correct (2) correct ones, labelled; the caption counts the rest
    assert "Explanation maps" in html and "explanation_sanity.html" in html and "explanation_sanity.tsv" in html
    overlays = pd.read_csv(finished_run / RESULTS / "reporting/overlays.tsv", sep="\t")
    splits = pd.read_csv(finished_run / RESULTS / "folds/splits.tsv", sep="\t")
    assert len(overlays) == 3 * (splits["role"] == "test").sum()  # every CNN's test patients, shown or not
    for r in overlays.itertuples():
        shown = f'{RESULTS}/report_overlays/{r.model}/{r.outcome}/fold{r.fold}/{r.subject}.png": {{"name"' in html
        assert shown == r.in_report, (r.model, r.subject)
        assert f"{RESULTS}/explain/{r.model}/fold{r.fold}/maps/{r.subject}.png" not in html  # never twice
    for model, part in overlays.groupby("model"):
        correct = part[part["outcome"] == "correct"]
        wrong = part[part["outcome"] != "correct"]
        assert correct["in_report"].sum() == min(2, len(correct)) and wrong["in_report"].sum() == min(10, len(wrong))
        left = int((~part["in_report"]).sum())
        assert (f"The overlays of the other {left} of its {len(part)} test patients are left out of this report"
                if left else "No overlay of a test patient is left out") in html, model
    assert '"labels": {"model": "t1ce_resnet18", "outcome": ' in html
    assert "{{" not in html.split("workflow_desc", 1)[1][:20000]  # every template was filled
    assert not list(finished_run.glob("report*.html"))  # nothing written into the run itself


BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def test_report_opens_on_the_headline_table_in_a_browser(finished_run: Path, tmp_path: Path) -> None:
    """Headless Chromium runs the report's scripts (React renders the page): the landing page shows
    the headline table (every model's AUC and interval from metrics.tsv) and the figures, the result
    tables are pages, and no script throws."""
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        pytest.skip(f"no browser on PATH (tried {', '.join(BROWSERS)}; CI installs Debian's chromium), "
                    "so the report was not opened in one")
    report = tmp_path / "report.html"
    result = run_snakemake(finished_run, "--report", str(report), timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    shown = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                            "--v=0", "--window-size=1366,768", "--virtual-time-budget=15000", "--dump-dom",
                            report.as_uri()], capture_output=True, text=True, timeout=180,
                           stdin=subprocess.DEVNULL)
    assert shown.returncode == 0, shown.stderr[-3000:]
    # Chromium logs each console message as `...CONSOLE:<line>] "<message>", source: ...`
    errors = [line for line in shown.stderr.splitlines()
              if re.search(r'CONSOLE[^\]]*\] "(Uncaught|\w*Error\b|The above error occurred)', line)]
    assert not errors, "\n".join(errors)
    # what the scripts rendered: the DOM without the scripts that carry the data
    dom = re.sub(r"<script\b.*?</script>", "", shown.stdout, flags=re.DOTALL)
    # the landing page (the description in a list, report_metadata.yaml), not the rule graph's view
    assert re.search(r'<ul[^>]*>\s*<div class="prose[^"]*">.*?<div class="oncoflow-summary">', dom, re.DOTALL), dom[:3000]
    metrics = pd.read_csv(finished_run / RESULTS / "tables" / "metrics.tsv", sep="\t")
    assert len(metrics) == 2 * len(MODELS)
    for row in metrics.itertuples():
        if pd.notna(row.auc_ci_low):
            assert f"{row.auc:.2f} [{row.auc_ci_low:.2f}, {row.auc_ci_high:.2f}]" in dom, row.model
    assert dom.count('src="data:image/png;base64,') >= 4  # ROC, calibration, PR, decision curves
