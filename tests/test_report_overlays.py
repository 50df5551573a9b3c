"""The report's cap on explanation overlays (oncoflow.report.overlays, rules write_failures and
collect_report_overlays): per CNN model ``report_misclassified`` misclassified cross-validation
patients' overlays (farthest from the threshold first) and ``report_correct`` correct ones, drawn at
random alternately from each class; the caption's sentence counts what was left out, and the failure
analysis embeds the overlays the report shows and links the others."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from oncoflow.report.failures import MapIndex, classified, failures_markdown
from oncoflow.report.overlays import choose_overlays, left_out_text, write_report_overlays

SUBJECTS = [f"s{i:02d}" for i in range(12)]
CNN = ("a_resnet18", "b_resnet18")


def run(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, MapIndex]:
    """Three folds of 4 test patients; two CNNs and a radiomics model; each CNN misclassifies 3."""
    rows = []
    for model in (*CNN, "baseline"):
        for i, s in enumerate(SUBJECTS):
            y = i % 2
            wrong = {"a_resnet18": {1: 0.2, 2: 0.9, 7: 0.45}, "b_resnet18": {0: 0.6, 5: 0.3, 6: 0.95},
                     "baseline": {3: 0.1}}[model]  # subject index -> its (wrong) probability
            p = wrong[i] if i in wrong else (0.8 if y else 0.2)
            rows.append({"model": model, "subject": s, "fold": i % 3, "role": "test", "y_true": y,
                         "probability": p, "threshold": 0.5})
    preds = pd.DataFrame(rows)
    sanity = pd.DataFrame([{"model": m, "fold": k, "method": "occlusion", "n_patients": 4, "patients_flat_map": 0,
                            "random_spearman": 0.1, "weights_independent": False} for m in CNN for k in range(3)])
    for r in preds[preds["model"].isin(CNN)].itertuples():
        folder = tmp_path / f"explain/{r.model}/fold{r.fold}/maps"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{r.subject}.png").write_bytes(f"{r.model} {r.subject}".encode())
    qc = pd.DataFrame({"subject": SUBJECTS, "flag": ""})
    return preds, qc, MapIndex(frozenset(CNN), sanity, tmp_path)


def test_the_report_shows_every_failure_and_a_few_correct_patients_per_model(tmp_path: Path) -> None:
    preds, qc, maps = run(tmp_path)
    wrong, correct = classified(preds, qc, maps), classified(preds, qc, maps, wrong=False)
    table = choose_overlays(wrong, correct, n_wrong=None, n_correct=3, seed=42)
    assert set(table["model"]) == set(CNN)  # the radiomics model has no overlay
    for model in CNN:
        part = table[table["model"] == model]
        assert len(part) == len(SUBJECTS)
        failed = part[part["outcome"] != "correct"]
        assert set(failed["subject"]) == set(wrong.loc[wrong["model"] == model, "subject"]) and failed["in_report"].all()
        shown = part[(part["outcome"] == "correct") & part["in_report"]]
        assert len(shown) == 3 and sorted(shown["y_true"]) == [0, 1, 1]  # alternately, positive first
        text = left_out_text(table, model, n_wrong=None, n_correct=3, seed=42)
        assert text.startswith(f"The report shows the overlays of {model} for all 3 cross-validation test patients it "
                               "misclassified (explain.report_misclassified: all) and for 3 of the 9 it classified")
        assert text.endswith(f"The overlays of the other 6 of its 12 test patients are left out of this report "
                             f"(reporting/overlays.tsv lists them): ``explain/{model}/fold<k>/maps/<subject>.png`` in "
                             "the results folder, and under ``explain/`` in the paper archive.")
    assert choose_overlays(wrong, correct, n_wrong=None, n_correct=3, seed=42).equals(table)  # seeded
    draws = {frozenset(choose_overlays(wrong, correct, n_wrong=None, n_correct=3, seed=s).query("in_report")["subject"])
             for s in range(6)}
    assert len(draws) > 1  # drawn, not the first rows
    capped = choose_overlays(wrong, correct, n_wrong=2, n_correct=0, seed=42)
    assert (capped["in_report"] <= (capped["outcome"] != "correct")).all()
    # the two farthest from the threshold 0.5: a_resnet18's s02 (0.9, label 0) and s01 (0.2, label 1), not s07 (0.45)
    assert set(capped.query("in_report and model == 'a_resnet18'")["subject"]) == {"s01", "s02"}
    assert "for the 2 of the 3 cross-validation test patients it misclassified that lay farthest from the threshold " \
           "(explain.report_misclassified: 2)" in left_out_text(capped, "a_resnet18", n_wrong=2, n_correct=0, seed=42)
    everyone = choose_overlays(wrong, correct, n_wrong=None, n_correct=50, seed=42)
    assert everyone["in_report"].all() and left_out_text(everyone, CNN[0], n_wrong=None, n_correct=50, seed=42).endswith(
        "No overlay of a test patient is left out.")


def test_the_failure_analysis_embeds_the_overlays_the_report_shows_and_links_the_others(tmp_path: Path) -> None:
    preds, qc, maps = run(tmp_path)
    wrong = classified(preds, qc, maps)
    table = choose_overlays(wrong, classified(preds, qc, maps, wrong=False), n_wrong=1, n_correct=0, seed=42)
    shown = {(r.model, r.subject) for r in table.itertuples() if r.in_report}
    md = failures_markdown(wrong, {(m, "cv"): 12 for m in (*CNN, "baseline")}, None, shown)
    for r in wrong[wrong["model"].isin(CNN)].itertuples():
        image = f"![{r.subject}, {r.model} fold {r.fold}](../{r.explanation_map})"
        link = f"[{r.subject}.png](../{r.explanation_map})"
        assert (image in md) == ((r.model, r.subject) in shown) and (link in md) != ((r.model, r.subject) in shown)
    assert md.count("![") == 2  # one a model
    assert failures_markdown(wrong, {(m, "cv"): 12 for m in CNN}).count("![") == 6  # no selection: every overlay


def test_the_report_folder_holds_the_shown_overlays_and_each_models_caption(tmp_path: Path) -> None:
    preds, qc, maps = run(tmp_path)
    table = choose_overlays(classified(preds, qc, maps), classified(preds, qc, maps, wrong=False), n_wrong=None,
                            n_correct=2, seed=7)
    out = tmp_path / "report_overlays"
    assert write_report_overlays(table, tmp_path, out, n_wrong=None, n_correct=2, seed=7) == 2 * (3 + 2)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    expected = sorted(f"{r.model}/{r.outcome}/fold{r.fold}/{r.subject}.png" for r in table.itertuples() if r.in_report)
    assert written == expected
    for r in table[table["in_report"]].itertuples():  # the overlay itself, not a copy on disk
        assert (out / r.model / r.outcome / f"fold{r.fold}" / f"{r.subject}.png").samefile(tmp_path / r.overlay)
    assert (out / f"{CNN[1]}.rst").read_text().startswith(f"The report shows the overlays of {CNN[1]} for all 3 ")
    gone = table[table["in_report"]].iloc[0]
    (tmp_path / gone["overlay"]).unlink()
    with pytest.raises(FileNotFoundError, match=f"{gone['model']} fold {gone['fold']}: overlay of test patient "
                                                f"{gone['subject']} missing"):
        write_report_overlays(table, tmp_path, tmp_path / "again", n_wrong=None, n_correct=2, seed=7)
