"""The model card (oncoflow.report.model_card, rule write_model_card): its numbers are the metrics
table's, its sections are Mitchell et al.'s, its limitations and differences from the paper come from
the run and the study page, and sites are summarised when the folds carry a site column."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from workflow_helpers import REPO, report_facts_for, tiny_config

from oncoflow.report.model_card import INTENDED_USE, SECTIONS, card_markdown, model_card

# Mitchell et al. 2019, Figure 1 (the model card's sections, in order)
MITCHELL_2019 = ["Model details", "Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
                 "Quantitative analyses", "Ethical considerations", "Caveats and recommendations"]


def cell(value: float) -> str:
    """A metrics.tsv number as a card prints it (3 decimals; n/a for an undefined one)."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def with_ci(row: pd.Series, key: str) -> str:
    low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    return cell(row[key]) + ("" if pd.isna(low) or pd.isna(high) else f" ({cell(low)} to {cell(high)})")


def markdown_rows(text: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line starts with ``header``."""
    block = text.split(header, 1)[1].split("\n\n", 1)[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.splitlines()[2:]]


def check_card_against_metrics(card: dict, text: str, metrics: pd.DataFrame) -> None:
    """Every performance and calibration figure of the card (JSON and Markdown) is the metrics table's."""
    assert [(r["model"], r["cohort"]) for r in card["quantitative_analyses"]] == list(
        zip(metrics["model"], metrics["cohort"]))
    for r, (_, row) in zip(card["quantitative_analyses"], metrics.iterrows()):
        for key in ("n", "n_pos", "auc", "auc_ci_low", "auc_ci_high", "sensitivity", "specificity", "threshold",
                    "cal_intercept", "cal_slope", "cal_slope_ci_low", "cal_slope_ci_high", "brier"):
            expected = None if pd.isna(row[key]) else row[key]
            assert r[key] == expected, (r["model"], r["cohort"], key, r[key], expected)
    performance = markdown_rows(text, "| model | cohort | n | positive | AUC (CI)")
    calibration = markdown_rows(text, "| model | cohort | intercept (CI)")
    assert len(performance) == len(calibration) == len(metrics)
    for shown, cal, (_, row) in zip(performance, calibration, metrics.iterrows()):
        assert shown[:5] == [row["model"], row["cohort"], str(int(row["n"])), str(int(row["n_pos"])),
                             with_ci(row, "auc")]
        assert shown[7:9] == [with_ci(row, "sensitivity"), with_ci(row, "specificity")]
        if str(row.get("calibration_assessable", True)).lower() == "true":
            assert cal[2:] == [with_ci(row, "cal_intercept"), with_ci(row, "cal_slope"), with_ci(row, "brier")]
        else:
            assert cal[2:] == ["not assessable", "not assessable", with_ci(row, "brier")]


def small_run() -> dict:
    """Two models, cv and external rows of a metrics table; 3 sites (cohort.site) in the folds; one QC flag."""
    config = tiny_config()
    config["cohort"]["site"] = "site"
    subjects = [f"s{i}" for i in range(10)]
    samples = pd.DataFrame({"subject": subjects, "label": ["1", "0"] * 5, "cohort": ["train"] * 8 + ["external"] * 2,
                            "dicom": [f"dicom/{s}" for s in subjects]})
    splits = pd.DataFrame({"subject": subjects[:8] * 2, "fold": [0] * 8 + [1] * 8, "role": ["train", "test"] * 8,
                           "label": [1, 0] * 8, "site": ["A", "A", "B", "B", "B", "C", "C", "C"] * 2})
    external = pd.DataFrame({"subject": subjects[8:], "fold": 0, "role": "external", "label": [1, 0], "site": "D"})
    splits = pd.concat([splits, external], ignore_index=True)  # an external site is not training data
    qc = pd.DataFrame({"subject": subjects, "flag": ["", "t1ce: constant inside the brain"] + [""] * 8})
    base = {"n": 8, "n_pos": 4, "auc": 0.8125, "auc_ci_low": 0.51234, "auc_ci_high": 1.0, "threshold": 0.41,
            "sensitivity": 0.75, "specificity": 0.5, "balanced_accuracy": 0.625, "brier": 0.21,
            "brier_ci_low": 0.1, "brier_ci_high": 0.3, "cal_intercept": 0.1, "cal_intercept_ci_low": -0.9,
            "cal_intercept_ci_high": 1.1, "cal_slope": 0.3, "cal_slope_ci_low": 0.1, "cal_slope_ci_high": 0.6,
            "note": ""}
    metrics = pd.DataFrame([
        {"model": "t1ce_resnet18", "cohort": "cv", **base},
        {"model": "t1ce_resnet18", "cohort": "external", **base, "n": 2, "n_pos": 1, "auc": float("nan"),
         "auc_ci_low": float("nan"), "auc_ci_high": float("nan"), "note": "auc undefined: n=2"},
        {"model": "fusion_mean", "cohort": "cv", **base, "auc": 0.6, "cal_slope": 1.1, "cal_slope_ci_low": 0.2,
         "cal_slope_ci_high": 2.0},
    ])
    provenance = {"git": {"commit": "abc123", "dirty": False}, "software": {"oncoflow": "0.1.0"},
                  "config_files": [{"path": "config/config.yaml", "sha256": "f" * 64}],
                  "sample_sheet": {"path": "data/demo/samples.tsv", "sha256": "e" * 64},
                  "inputs": {"metrics": {"path": "results/demo/tables/metrics.tsv", "sha256": "d" * 64}},
                  "subjects": {"files": 40, "bytes": 1000, "sha256": "c" * 64, "subjects": {}}, "weights": [],
                  "written": "2026-11-30T21:02:01+0000"}
    return {"config": config, "metrics": metrics, "samples": samples, "splits": splits, "qc": qc,
            "provenance": provenance}


def test_card_sections_numbers_sites_and_limitations() -> None:
    run = small_run()
    card = model_card(report_facts_for(run.pop("config")), **run)
    text = card_markdown(card)
    assert list(SECTIONS[:9]) == MITCHELL_2019
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings[:9] == MITCHELL_2019 and headings[9] == "Checksums"
    check_card_against_metrics(card, text, run["metrics"])
    assert "0.812 (0.512 to 1.000)" in text  # 0.8125 and 0.51234 as metrics.md rounds them
    data = card["training_data"]
    assert (data["n_internal"], data["n_positive"]) == (8, 4) and "`site` column (cohort.site)" in data["sites_source"]
    assert data["sites"] == [{"site": "A", "n": 2, "n_positive": 1}, {"site": "B", "n": 3, "n_positive": 2},
                             {"site": "C", "n": 3, "n_positive": 1}]
    limits = "\n".join(card["caveats"]["limitations"])
    assert "8 internal patients (4 positive)" in limits and "t1ce_resnet18 (external)" in limits
    assert "Miscalibrated: t1ce_resnet18 (cv)" in limits and "Miscalibrated: fusion_mean" not in limits
    assert "s1" in limits and "Sites not analysed" not in limits
    assert card["explanation_checks"] is None and "randomisation check" not in text  # no maps: nothing said
    assert card["intended_use"]["statement"] == INTENDED_USE and "Research use only" in text
    assert card["checksums"]["sample_sheet"]["sha256"] == "e" * 64 and "c" * 64 in text
    assert "No study page" in text and card["caveats"]["differences_from_paper"] == []

    run = small_run()
    config = run.pop("config")
    config["study"].update(name="lgg_radiogenomics", intended_use="Retrospective research on TCGA-like LGG.")
    config["cohort"]["site"] = None
    run["splits"] = run["splits"].drop(columns="site")
    page = REPO / "docs/studies/lgg_radiogenomics.md"
    card = model_card(report_facts_for(config), **run, study_page=str(page))
    differences = card["caveats"]["differences_from_paper"]
    listed = page.read_text().split("## Differences from the paper", 1)[1].split("\n## ", 1)[0].count("\n- ")
    assert len(differences) == listed >= 5 and differences[0].startswith("**In-domain pretraining on LGG, not GBM**")
    assert "0.730" in differences[0] and "\n" not in differences[0]  # the item's wrapped lines joined
    assert "Buda M" in card["model_details"]["paper"]
    assert card["training_data"]["sites"] is None
    assert "Sites not analysed: cohort.site is not set:" in "\n".join(card["caveats"]["limitations"])
    assert card_markdown(card).count("Retrospective research on TCGA-like LGG.") == 1


def test_card_threshold_cis_unassessable_calibration_and_pooled_gap() -> None:
    run = small_run()
    metrics = run["metrics"].assign(sensitivity_ci_low=0.3, sensitivity_ci_high=0.95, calibration_assessable=False,
                                    auc_fold_mean=[0.95, float("nan"), 0.62])
    run["metrics"] = metrics
    card = model_card(report_facts_for(run.pop("config")), **run)
    text = card_markdown(card)
    check_card_against_metrics(card, text, metrics)
    assert "0.750 (0.300 to 0.950)" in text
    limits = "\n".join(card["caveats"]["limitations"])
    assert "Miscalibrated" not in limits and "Calibration not assessable" in limits
    assert "t1ce_resnet18 (pooled 0.812" in limits and "fusion_mean (pooled" not in limits  # gap 0.14 vs 0.02


@pytest.mark.slow
def test_finished_run_has_a_model_card_with_the_metrics_tables_numbers(finished_run: Path) -> None:
    folder = finished_run / "results/demo/reporting"
    card = json.loads((folder / "model_card.json").read_text())
    text = (folder / "model_card.md").read_text()
    metrics = pd.read_csv(finished_run / "results/demo/tables/metrics.tsv", sep="\t")
    check_card_against_metrics(card, text, metrics)
    provenance = json.loads((finished_run / "results/demo/provenance.json").read_text())
    assert card["checksums"]["git_commit"] == provenance["git"]["commit"]
    assert provenance["sample_sheet"]["sha256"] in text
    assert card["training_data"]["n_internal"] == 12 and {c["cohort"] for c in card["training_data"]["cohorts"]} == {
        "train", "external"}
    html = (folder / "model_card.html").read_text()
    assert "<table>" in html and "<h2>Quantitative analyses</h2>" in html and "<ul>" in html


def shipped_configs() -> dict[str, dict]:
    """The default config and every study config (config/studies/*.yaml)."""
    import yaml

    configs = {"config.yaml": yaml.safe_load((REPO / "config/config.yaml").read_text())}
    for path in sorted((REPO / "config/studies").glob("*.yaml")):
        configs[path.name] = yaml.safe_load(path.read_text())
    return configs


@pytest.mark.parametrize("name", sorted(shipped_configs()))
def test_card_describes_every_model_of_every_shipped_study_completely(name: str) -> None:
    """Issue #28: "`fusion_mean`: late fusion (mean) of " ended there. Every model of each shipped
    study shape gets a complete description in the card's Markdown, JSON and HTML, and a fusion's
    names each model it fuses."""
    from oncoflow.report.markdown import markdown_to_html

    config = shipped_configs()[name]
    facts = report_facts_for(config, baseline=True)
    run = small_run()
    run.pop("config")
    run["metrics"] = pd.concat([run["metrics"].iloc[[0]].assign(model=m) for m in facts.models], ignore_index=True)
    study = facts.config["study"]
    labels = run["samples"]["label"].map({"1": str(study["positive"]), "0": "other"})
    run["samples"] = run["samples"].drop(columns="label").assign(**{study["label"]: labels})
    if not facts.site:
        run["splits"] = run["splits"].drop(columns="site")
    card = model_card(facts, **run)
    described = {m["name"]: m["description"] for m in card["model_details"]["models"]}
    assert list(described) == facts.models
    for model, text in described.items():
        assert text and text == text.strip() and not text.endswith((" of", ",", "(", "see methods.md")), (model, text)
        if model.startswith("fusion_"):
            assert facts.fused and all(f in text for f in facts.fused), (model, text)
    markdown = card_markdown(card)
    assert not [line for line in markdown.splitlines() if line.rstrip().endswith(" of")]
    assert " of <" not in markdown_to_html(markdown, "card") and " of \"" not in json.dumps(card)
    with pytest.raises(ValueError, match="'unknown_model'"):
        model_card(facts, **{**run, "metrics": run["metrics"].assign(model="unknown_model")})


def test_card_names_the_patients_scored_from_a_predicted_mask_only_when_there_are_any() -> None:
    run = small_run()
    assert "Tumor masks" not in card_markdown(model_card(report_facts_for(run.pop("config")), **run))
    run = small_run()
    config = run.pop("config")
    config["segment"] = {"crop_mask": "predicted"}
    text = card_markdown(model_card(report_facts_for(config), **run))
    assert "- Tumor masks: 10 of 10 patients (s0, s1," in text
    assert "features" not in text.split("- Tumor masks:")[1].split("\n")[0]
    config["segment"] = {"feature_mask": "predicted"}  # the baseline's features from predicted masks, crops manual
    run = {k: v for k, v in small_run().items() if k != "config"}
    text = card_markdown(model_card(report_facts_for(config, baseline=True), **run))
    assert ("- Tumor masks: The features of baseline were computed from the cross-fitted predicted masks of all "
            "10 patients") in text
