"""The model card of a study (reporting/model_card.{md,json,html}, rule write_model_card).

Sections after Mitchell M, Wu S, Zaldivar A, et al. Model Cards for Model Reporting. FAT* 2019:
model details, intended use, factors, metrics, evaluation data, training data, quantitative
analyses, ethical considerations, caveats and recommendations; plus the checksums that tie the card
to its run. Every number is read from the run's own files: performance and calibration from
tables/metrics.tsv (copied, never recomputed), the cohort from the sample sheet and folds/splits.tsv,
QC flags from qc/qc.tsv, checksums and versions from provenance.json; the differences from the
paper from the study's page in docs/studies/ (its "Differences from the paper" list). What the run
cannot know (developers, ethics approval) is marked as left to the authors.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from oncoflow import atomic
from oncoflow.segment.crossfit import feature_mask_source, predicted_crop_sentence, predicted_crop_subjects
from oncoflow.metrics.evaluate import NOT_ASSESSABLE, POOLED_GAP_MARGIN
from oncoflow.metrics.choices import MIN_CALIBRATION_EVENTS
from oncoflow.report.explanations import explanation_text, flagged_text, model_checks, read_explanations
from oncoflow.report.selection import read_selection, reliability_text, selection_text
from oncoflow.run_facts import ReportFacts

CITATION = ("Mitchell M, Wu S, Zaldivar A, Barnes P, Vasserman L, Hutchinson B, Spitzer E, Raji ID, Gebru T. "
            "Model Cards for Model Reporting. Proc FAT* 2019:220-229. doi:10.1145/3287560.3287596")
SECTIONS = ("Model details", "Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
            "Quantitative analyses", "Ethical considerations", "Caveats and recommendations", "Checksums")
AUTHORS = "left to the authors"
#: metrics.tsv columns the card copies, per model and cohort
PERFORMANCE = ("n", "n_pos", "auc", "auc_ci_low", "auc_ci_high", "auc_risk", "auc_fold_mean", "threshold", "accuracy",
               "accuracy_ci_low", "accuracy_ci_high", "sensitivity", "sensitivity_ci_low", "sensitivity_ci_high",
               "specificity", "specificity_ci_low", "specificity_ci_high", "ppv", "ppv_ci_low", "ppv_ci_high",
               "npv", "npv_ci_low", "npv_ci_high", "balanced_accuracy", "brier", "brier_ci_low", "brier_ci_high")
CALIBRATION = ("cal_intercept", "cal_intercept_ci_low", "cal_intercept_ci_high", "cal_slope", "cal_slope_ci_low",
               "cal_slope_ci_high")
DIFFERENCES = "## Differences from the paper"
#: study.intended_use when the config leaves it unset (the schema has no default: see its description)
INTENDED_USE = ("Research use only: to study whether MRI predicts the label in patients like the training data "
                "described below. Not a medical device; not validated for diagnosis, prognosis or treatment "
                "decisions of individual patients.")


def fmt(value: float | int | None, digits: int = 3) -> str:
    """How the card prints a metrics cell (the test reads the Markdown back with this)."""
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _ci(row: dict[str, Any], key: str) -> str:
    low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    return fmt(row.get(key)) + ("" if low is None or high is None else f" ({fmt(low)} to {fmt(high)})")


def study_page_differences(page: str | Path | None) -> list[str]:
    """The bullet items of the study page's "Differences from the paper" section (joined lines)."""
    if not page or not Path(page).is_file():
        return []
    text = Path(page).read_text(encoding="utf-8")
    if DIFFERENCES not in text:
        return []
    section = re.split(r"^## ", text.split(DIFFERENCES, 1)[1], flags=re.M)[0]
    items: list[str] = []
    for line in section.splitlines():
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return items


def study_page_paper(page: str | Path | None) -> str | None:
    """The paragraph after **Paper.** on the study page."""
    if not page or not Path(page).is_file():
        return None
    match = re.search(r"\*\*Paper\.\*\*(.+?)(?:\n\s*\n|$)", Path(page).read_text(encoding="utf-8"), flags=re.S)
    return " ".join(match.group(1).split()) if match else None


FUSION = {"mean": "mean of the probabilities", "lr": "logistic-regression stacking",
          "svm": "linear-SVM stacking with Platt scaling"}


def describe_models(facts: ReportFacts, names: list[str]) -> list[dict[str, Any]]:
    """Each evaluated model with what it is (from the plan's facts; details in methods.md). A
    model the plan does not know stops the card (nothing is described as "see methods.md")."""
    fusions = {f"fusion_{m}": m for m in facts.fusion_methods}
    out = []
    for name in names:
        if name in facts.cnn:
            p = facts.cnn[name].params
            what = (f"{p['architecture']} CNN on {' + '.join(facts.cnn[name].modalities)}, init {p['init']}"
                    + (", co-trained with tumor segmentation" if p.get("cotrain_segmentation") else ""))
            kind = "cnn"
        elif name in fusions:
            what, kind = f"late fusion ({FUSION[fusions[name]]}) of {', '.join(facts.fused)}", "fusion"
        elif name in facts.baseline:
            what, kind = ("L2-penalised logistic regression on log tumor volume and per-modality tumor intensity "
                          "statistics"), "baseline"
        elif name == "clinical" and name in facts.radiomics:
            what, kind = "logistic model on the clinical covariates", "clinical"
        elif name in facts.radiomics and name.startswith("combined_"):
            what, kind = (f"rad-score ({name.removeprefix('combined_')} images) with the clinical covariates",
                          "radiomics")
        elif name in facts.radiomics:
            what, kind = f"LASSO rad-score of radiomic features ({name.removeprefix('radiomics_')} images)", "radiomics"
        else:
            raise ValueError(f"model card: tables/metrics.tsv has model {name!r}, which this run's plan does not "
                             f"have ({', '.join(facts.models)})")
        out.append({"name": name, "kind": kind, "description": what})
    return out


def training_data(facts: ReportFacts, samples: pd.DataFrame, splits: pd.DataFrame,
                  qc: pd.DataFrame) -> dict[str, Any]:
    """n, class balance per cohort (internal ones trained; others only evaluated), sites when
    cohort.site names the sheet's site column (as folds/splits.tsv carries them), QC flags."""
    config = facts.config
    study = config["study"]
    y = (samples[study["label"]].astype(str) == str(study["positive"])).astype(int)
    external = set(config["cohort"]["external"])
    cohorts = []
    for name, part in samples.assign(y=y).groupby("cohort", sort=True):
        cohorts.append({"cohort": str(name), "role": "external (evaluated only)" if name in external else
                        "internal (trained and cross-validated)", "n": int(len(part)), "n_positive": int(part["y"].sum())})
    internal = samples.assign(y=y)[~samples["cohort"].isin(external)]
    site_rows = source = None
    if facts.site:
        sites = splits.drop_duplicates("subject")[["subject", "site"]].merge(internal[["subject", "y"]], on="subject")
        source = f"the sample sheet's `{facts.site}` column (cohort.site), as folds/splits.tsv carries it"
        site_rows = [{"site": str(s), "n": int(len(p)), "n_positive": int(p["y"].sum())}
                     for s, p in sites.groupby("site", sort=True)]
    flagged = qc[qc["flag"].fillna("").astype(str) != ""]["subject"].astype(str).tolist() if "flag" in qc else []
    n, pos = int(len(internal)), int(internal["y"].sum())
    return {"label": study["label"], "positive": str(study["positive"]), "n_internal": n, "n_positive": pos,
            "n_negative": n - pos, "prevalence": round(pos / n, 4) if n else None, "cohorts": cohorts,
            "sites": site_rows, "sites_source": source, "sites_unset": _sites_unset(samples), "qc_flagged": flagged,
            "modalities": list(config["ingest"]["modalities"])}


def _sites_unset(samples: pd.DataFrame) -> str:
    """What the card says when cohort.site is not set (sites are read only from the column it names)."""
    hint = (" (the sample sheet has a `site` column: set cohort.site: site to analyse it)" if "site" in samples.columns
            else "")
    return f"not analysed: cohort.site is not set{hint}"


def performance(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model and cohort: metrics.tsv's cells as they are (NaN -> None)."""
    rows = []
    for record in metrics.to_dict("records"):
        row = {"model": record["model"], "cohort": record["cohort"]}
        for key in (*PERFORMANCE, *CALIBRATION):
            value = record.get(key)
            row[key] = None if value is None or pd.isna(value) else (int(value) if key in ("n", "n_pos")
                                                                     else float(value))
        row["note"] = record.get("note") if isinstance(record.get("note"), str) else ""
        row["calibration_assessable"] = str(record.get("calibration_assessable", True)).lower() == "true"
        rows.append(row)
    return rows


def limitations(config: dict[str, Any], data: dict[str, Any], rows: list[dict[str, Any]],
                selection: str = "") -> list[str]:
    """Caveats that follow from this run's own numbers (each names the figure it rests on)."""
    out = []
    level = round(100 * config["evaluate"]["ci_level"])
    cv = [r for r in rows if r["cohort"] == "cv" and r["auc_ci_low"] is not None]
    if cv:
        widths = [r["auc_ci_high"] - r["auc_ci_low"] for r in cv]
        low, high = f"{min(widths):.2f}", f"{max(widths):.2f}"
        out.append(f"Small sample: {data['n_internal']} internal patients ({data['n_positive']} positive); the "
                   f"{level}% CIs of the cross-validated AUC are {low if low == high else f'{low} to {high}'} wide.")
    evaluated_external = [r for r in rows if r["cohort"] != "cv" and (r["n"] or 0) > 0]
    if not evaluated_external:
        out.append("No external cohort: all performance is internal (cross-validated); no other site or "
                   "scanner has tested the models.")
    undefined = sorted({f"{r['model']} ({r['cohort']})" for r in rows if r["auc"] is None})
    if undefined:
        out.append("AUC undefined (a single class or no patients; see the notes in tables/metrics.tsv): "
                   + ", ".join(undefined) + ".")
    if data["sites"] is None:
        out.append(f"Sites {data['sites_unset']}: performance across centres and scanners is unknown.")
    elif len(data["sites"]) == 1:
        out.append(f"One site ({data['sites'][0]['site']}): performance at other centres and scanners is unknown.")
    gaps = [f"{r['model']} (pooled {fmt(r['auc'])}, of risks {fmt(r.get('auc_risk'))}, per-fold mean "
            f"{fmt(r['auc_fold_mean'])})" for r in rows
            if r["cohort"] == "cv" and r["auc"] is not None and r.get("auc_fold_mean") is not None
            and abs(r["auc"] - r["auc_fold_mean"]) > POOLED_GAP_MARGIN]
    if gaps:
        out.append(f"Pooled and per-fold AUC differ by more than {POOLED_GAP_MARGIN}: " + ", ".join(gaps)
                   + ". The fold models score on different scales, so the pooled AUC (the headline) and the "
                   "operating point at the fold thresholds describe different things.")
    unassessable = sorted({f"{r['model']} ({r['cohort']})" for r in rows if not r["calibration_assessable"]})
    if unassessable:
        out.append(f"Calibration not assessable (fewer than {MIN_CALIBRATION_EVENTS} patients of the smaller class; "
                   "Collins et al. 2016): " + ", ".join(unassessable) + ". Their intercept and slope are not "
                   "reported as evidence of (mis)calibration.")
    if selection:
        out.append(selection)
    for r in rows:
        if not r["calibration_assessable"]:
            continue
        off = []
        if r["cal_slope_ci_low"] is not None and not r["cal_slope_ci_low"] <= 1 <= r["cal_slope_ci_high"]:
            off.append(f"slope {_ci(r, 'cal_slope')}")
        if r["cal_intercept_ci_low"] is not None and not r["cal_intercept_ci_low"] <= 0 <= r["cal_intercept_ci_high"]:
            off.append(f"intercept {_ci(r, 'cal_intercept')}")
        if off:
            out.append(f"Miscalibrated: {r['model']} ({r['cohort']}), recalibrated risk with {' and '.join(off)} "
                       f"({level}% CI excludes the ideal).")
    if data["qc_flagged"]:
        out.append(f"{len(data['qc_flagged'])} subject(s) flagged by quality control and kept in the evaluation: "
                   + ", ".join(data["qc_flagged"]) + " (qc/qc.tsv).")
    notes = sorted({n.strip() for r in rows for n in r["note"].split(";") if n.strip() and "undefined" not in n})
    if notes:
        out.append("Notes of the metrics table: " + "; ".join(notes) + ".")
    return out


def checksums(provenance: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Code version, config and inputs as provenance.json records them, and the resolved config's digest."""
    resolved = json.dumps(config, sort_keys=True, default=str).encode()
    subjects = provenance.get("subjects") or {}
    return {
        "git_commit": (provenance.get("git") or {}).get("commit"),
        "git_dirty": (provenance.get("git") or {}).get("dirty"),
        "oncoflow": (provenance.get("software") or {}).get("oncoflow"),
        "software": provenance.get("software") or {},
        "config_files": provenance.get("config_files") or [],
        "resolved_config_sha256": hashlib.sha256(resolved).hexdigest(),
        "sample_sheet": provenance.get("sample_sheet"),
        "inputs": {k: v for k, v in (provenance.get("inputs") or {}).items() if k != "samples"},
        "subject_inputs": {k: subjects.get(k) for k in ("files", "bytes", "sha256")} if subjects else None,
        "weights": provenance.get("weights") or [],
        "written": provenance.get("written"),
    }


def model_card(facts: ReportFacts, *, metrics: pd.DataFrame, samples: pd.DataFrame, splits: pd.DataFrame,
               qc: pd.DataFrame, provenance: dict[str, Any], study_page: str | None = None,
               selection: pd.DataFrame | None = None, prediction_sets: pd.DataFrame | None = None,
               explanations: pd.DataFrame | None = None) -> dict[str, Any]:
    """The card as a JSON-able dict (the Markdown is :func:`card_markdown` of it); ``prediction_sets``:
    tables/prediction_sets.tsv (oncoflow.metrics.conformal); ``explanations``:
    tables/explanation_sanity.tsv (the maps' randomisation check)."""
    config = facts.config
    ev, pre = config["evaluate"], config["preprocess"]
    names = list(dict.fromkeys(metrics["model"]))
    data = training_data(facts, samples, splits, qc)
    n_folds = splits["fold"].nunique() // facts.repeats  # leave_one_site_out: the tested sites
    rows = performance(metrics)
    page = Path(study_page) if study_page else None
    differences = study_page_differences(page)
    threshold = ev["threshold"]
    return {
        "model_card": f"oncoflow model card (sections of {CITATION})",
        "study": config["study"]["name"],
        "model_details": {
            "task": f"binary: {config['study']['label']} = {config['study']['positive']} (positive) vs the rest",
            "models": describe_models(facts, names),
            "ensemble": f"each model is {n_folds} fold models" + (f" x {facts.repeats} repeats"
                        if facts.repeats > 1 else "") + "; an external patient gets their mean probability",
            "tumor_masks": tumor_mask_text(facts, samples) or None,
            "inputs": {"modalities": data["modalities"], "reference": pre["reference"],
                       "bias_correction": pre["n4"]["activate"], "registration": pre["registration"]["transform"],
                       "brain_extraction": pre["brain_extraction"]["backend"], "crop": config["crop"]},
            "version": {"oncoflow": (provenance.get("software") or {}).get("oncoflow"),
                        "git_commit": (provenance.get("git") or {}).get("commit")},
            "date": provenance.get("written"),
            "paper": study_page_paper(page),
            "license": "code: MIT (oncoflow); trained models: " + AUTHORS,
            "developers_and_contact": AUTHORS,
            "methods": "methods.md of this run (every step, parameter and reference)",
            "epoch_selection": selection_text(selection) or None,
            "explanations": explanation_text(explanations, config["explain"], explanations is not None) or None,
        },
        "intended_use": {"statement": config["study"].get("intended_use") or INTENDED_USE,
                         "out_of_scope": "patients, sequences or scanners unlike those under Training data; any "
                                         "use that the statement above does not name"},
        "factors": {"evaluated": sorted({r["cohort"] for r in rows}),
                    "sites": [s["site"] for s in data["sites"]] if data["sites"] else None,
                    "not_evaluated": "age, sex, scanner and other subgroups (see reporting/characteristics.tsv "
                                     "for their distribution)"},
        "metrics": {"discrimination": f"AUC with {round(100 * ev['ci_level'])}% CI ({ev['ci_method']})",
                    "threshold": ("Youden's J on each fold's inner-validation patients" if threshold == "youden"
                                  else f"fixed probability {threshold}"),
                    "threshold_metrics": "accuracy, sensitivity, specificity, PPV, NPV (each with a Wilson "
                                         f"{round(100 * ev['ci_level'])}% CI) and balanced accuracy at the fold "
                                         "thresholds (external: their mean)",
                    "calibration": "calibration intercept and slope (Wald CI) and Brier score (bootstrap CI) of the "
                                   "recalibrated risk"},
        "evaluation_data": {"cv": "every internal patient once, scored by the fold model that never saw it",
                            "external": [c for c in data["cohorts"] if c["role"].startswith("external")]},
        "training_data": data,
        "quantitative_analyses": rows,
        "prediction_sets": prediction_set_rows(prediction_sets, ev),
        "explanation_checks": model_checks(explanations),
        "ethical_considerations": {"data": "pseudonymous subject IDs; DICOM headers are de-identified on "
                                           "conversion (rule convert_dicom)" if "dicom" in samples.columns
                                           else "pseudonymous subject IDs",
                                   "approval_consent_risks": AUTHORS},
        "caveats": {"limitations": limitations(config, data, rows,
                                               reliability_text(selection) if selection is not None else "")
                    + list(filter(None, [flagged_text(explanations, config["explain"])])),
                    "differences_from_paper": differences,
                    "study_page": str(page) if page and page.is_file() else None},
        "checksums": checksums(provenance, config),
    }


def prediction_set_rows(table: pd.DataFrame | None, ev: dict[str, Any]) -> dict[str, Any] | None:
    """The coverage of the conformal prediction sets (tables/prediction_sets.tsv), or None."""
    if table is None:
        return None
    ps = ev["prediction_sets"]
    return {"what": f"conformal prediction sets at error rate {ps['error_rate']:g} "
                    f"({'a threshold per class' if ps['by_class'] else 'one threshold'}, from each fold's "
                    "inner-validation patients); coverage is guaranteed only on average over patients"
                    f"{' of each class' if ps['by_class'] else ''}, under exchangeability of calibration and test "
                    "patients, not per patient or site",
            "rows": table.to_dict(orient="records")}


def prediction_set_cells(r: dict[str, Any]) -> list[str]:
    return [r["model"], r["cohort"], str(r["site"]), str(int(r["n"])), _ci(r, "coverage"), fmt(r["uncertain"]),
            fmt(r["empty"])]


def _table(header: list[str], rows: list[list[str]]) -> str:
    return ("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
            + "".join("| " + " | ".join(c.replace("|", "/") for c in row) + " |\n" for row in rows))


PERFORMANCE_HEADER = ["model", "cohort", "n", "positive", "AUC (CI)", "per-fold AUC mean", "threshold",
                      "sensitivity (CI)", "specificity (CI)", "PPV (CI)", "NPV (CI)", "accuracy (CI)",
                      "balanced accuracy"]
CALIBRATION_HEADER = ["model", "cohort", "intercept (CI)", "slope (CI)", "Brier (CI)"]


def performance_cells(r: dict[str, Any]) -> list[str]:
    return [r["model"], r["cohort"], fmt(r["n"]), fmt(r["n_pos"]), _ci(r, "auc"), fmt(r.get("auc_fold_mean")),
            fmt(r["threshold"]), *(_ci(r, k) for k in ("sensitivity", "specificity", "ppv", "npv", "accuracy")),
            fmt(r["balanced_accuracy"])]


def calibration_cells(r: dict[str, Any]) -> list[str]:
    if not r.get("calibration_assessable", True):
        return [r["model"], r["cohort"], NOT_ASSESSABLE, NOT_ASSESSABLE, _ci(r, "brier")]
    return [r["model"], r["cohort"], _ci(r, "cal_intercept"), _ci(r, "cal_slope"), _ci(r, "brier")]


def _prediction_set_lines(sets: dict[str, Any] | None) -> list[str]:
    if not sets:
        return []
    if not sets["rows"]:
        return ["Prediction sets: none made (every model's inner-validation patients selected it).", ""]
    return [f"Prediction sets (from tables/prediction_sets.tsv): {sets['what']}.", "",
            _table(["model", "cohort", "site", "n", "coverage (CI)", "uncertain", "empty"],
                   [prediction_set_cells(r) for r in sets["rows"]]),
            *dict.fromkeys(f"- {r['model']} ({r['cohort']}): {r['note']}." for r in sets["rows"] if r["note"]), ""]


def _explanation_lines(rows: list[dict[str, Any]] | None) -> list[str]:
    """The sanity check of the explanation maps per model and method (nothing when explain is off)."""
    if rows is None:
        return []
    return ["Explanation maps, model-parameter randomisation check per model (from tables/explanation_sanity.tsv; "
            "median over the fold models; a fold whose maps are all flat has no rank correlation and is not checked):",
            "", _table(["model", "method", "fold models", "flagged", "not checked (flat)", "trained vs random rho",
                        "map mass in tumor", "tumor share of the crop", "flat maps (patients)", "Grad-CAM layer"],
                       [[r["model"], r["method"], str(r["folds"]), str(r["flagged"]), str(r["not_checked"]),
                         fmt(r["random_spearman"], 2), f"{r['tumor_share']:.0%}", f"{r['tumor_area_share']:.0%}",
                         r["flat_maps"], r["layer"]] for r in rows])]


def card_markdown(card: dict[str, Any]) -> str:
    d, t, m = card["model_details"], card["training_data"], card["metrics"]
    c, k = card["caveats"], card["checksums"]
    lines = [f"# Model card: {card['study']}", "",
             f"Sections after Mitchell et al. 2019 ({CITATION}). Written by rule write_model_card from this run's "
             "tables/metrics.tsv, folds/splits.tsv, sample sheet, qc/qc.tsv and provenance.json; the same in "
             "model_card.json.", "", "## Model details", "",
             f"- Task: {d['task']}.", f"- Ensemble: {d['ensemble']}.",
             f"- Inputs: {', '.join(d['inputs']['modalities'])} (reference {d['inputs']['reference']}; N4 "
             f"{'on' if d['inputs']['bias_correction'] else 'off'}; registration {d['inputs']['registration']}; "
             f"brain extraction {d['inputs']['brain_extraction']}).",
             f"- Version: oncoflow {d['version']['oncoflow']}, git commit {d['version']['git_commit']}; written "
             f"{d['date']}.",
             f"- Paper: {d['paper'] or 'none (no study page in docs/studies/ for this study)'}.",
             f"- License: {d['license']}. Developers and contact: {d['developers_and_contact']}.",
             f"- Methods: {d['methods']}."]
    if d.get("tumor_masks"):
        lines.append(f"- Tumor masks: {d['tumor_masks']}")
    if d.get("epoch_selection"):
        lines.append(f"- Epoch selection: {d['epoch_selection']}")
    if d.get("explanations"):
        lines.append(f"- Explanations: {d['explanations']}")
    lines += ["", "Models:", ""]
    lines += [f"- `{x['name']}`: {x['description']}" for x in d["models"]]
    lines += ["", "## Intended use", "", card["intended_use"]["statement"], "",
              f"Out of scope: {card['intended_use']['out_of_scope']}.", "", "## Factors", "",
              f"- Evaluated per cohort: {', '.join(card['factors']['evaluated'])}.",
              f"- Sites: {', '.join(card['factors']['sites']) if card['factors']['sites'] else t['sites_unset']}.",
              f"- Not evaluated: {card['factors']['not_evaluated']}.", "", "## Metrics", "",
              f"- Discrimination: {m['discrimination']}.", f"- Threshold: {m['threshold']}.",
              f"- At the threshold: {m['threshold_metrics']}.", f"- Calibration: {m['calibration']}.", "",
              "## Evaluation data", "", f"- cv: {card['evaluation_data']['cv']}."]
    lines += [f"- {e['cohort']}: {e['n']} patients, {e['n_positive']} positive." for e in
              card["evaluation_data"]["external"]] or ["- No external cohort."]
    lines += ["", "## Training data", "",
              f"{t['n_internal']} internal patients, {t['n_positive']} positive ({t['label']} = {t['positive']}), "
              f"{t['n_negative']} negative (prevalence {fmt(t['prevalence'])}).", "",
              _table(["cohort", "role", "n", "positive"],
                     [[x["cohort"], x["role"], str(x["n"]), str(x["n_positive"])] for x in t["cohorts"]])]
    if t["sites"]:
        lines += [f"Sites ({t['sites_source']}):", "",
                  _table(["site", "n", "positive"], [[s["site"], str(s["n"]), str(s["n_positive"])] for s in t["sites"]])]
    lines += ["## Quantitative analyses", "", "Performance (from tables/metrics.tsv):", "",
              _table(PERFORMANCE_HEADER, [performance_cells(r) for r in card["quantitative_analyses"]]),
              "Calibration of the recalibrated risk (from tables/metrics.tsv):", "",
              _table(CALIBRATION_HEADER, [calibration_cells(r) for r in card["quantitative_analyses"]]),
              *_prediction_set_lines(card.get("prediction_sets")),
            *_explanation_lines(card.get("explanation_checks")),
              "## Ethical considerations", "", f"- Data: {card['ethical_considerations']['data']}.",
              f"- Ethics approval, consent, risks of use: {card['ethical_considerations']['approval_consent_risks']}.",
              "", "## Caveats and recommendations", "", "Known limitations (from this run's numbers):", ""]
    lines += [f"- {x}" for x in c["limitations"]] or ["- none derived from the tables."]
    lines += ["", "Differences from the paper"
              + (f" (from {Path(c['study_page']).name}, for the shipped study config):" if c["study_page"] else ":"), ""]
    lines += [f"- {x}" for x in c["differences_from_paper"]] or [
        "- No study page in docs/studies/ for this study: it reproduces no listed paper."]
    lines += ["", "## Checksums", "",
              f"- Code: oncoflow {k['oncoflow']}, git commit {k['git_commit']}"
              + (" (uncommitted changes)" if k["git_dirty"] else "") + ".",
              f"- Resolved config (sha256 of its canonical JSON): {k['resolved_config_sha256']}."]
    lines += [f"- Config file {x['path']}: {x['sha256']}." for x in k["config_files"]]
    if k["sample_sheet"]:
        lines.append(f"- Sample sheet {k['sample_sheet']['path']}: {k['sample_sheet']['sha256']}.")
    if k["subject_inputs"]:
        s = k["subject_inputs"]
        lines.append(f"- Subject inputs ({s['files']} files, {s['bytes']} bytes): {s['sha256']}.")
    lines += [f"- {name} {x['path']}: {x['sha256']}." for name, x in k["inputs"].items()]
    lines += [f"- Weights {x['path']}: {x['sha256']}." for x in k["weights"]]
    return "\n".join(lines).rstrip() + "\n"


def write_model_card(facts: ReportFacts, *, metrics: str, samples: str, splits: str, qc: str,
                     provenance: str, study_page: str | None, md: str, json_out: str, html: str,
                     selection: str | None = None, prediction_sets: str | None = None,
                     explanations: str | None = None) -> dict[str, Any]:
    from oncoflow.report.markdown import markdown_to_html

    def tsv(path: str) -> pd.DataFrame:
        return pd.read_csv(path, sep="\t", dtype={"subject": str})

    card = model_card(facts, metrics=tsv(metrics),
                      samples=pd.read_csv(samples, sep="\t", dtype=str, keep_default_na=False),
                      splits=tsv(splits), qc=tsv(qc), provenance=json.loads(Path(provenance).read_text()),
                      study_page=study_page, selection=read_selection(selection),
                      prediction_sets=pd.read_csv(prediction_sets, sep="\t", dtype={"site": str, "note": str})
                      .fillna({"note": ""}) if prediction_sets else None,
                      explanations=read_explanations(explanations))
    text = card_markdown(card)
    atomic.write_text(json_out, json.dumps(card, indent=2, default=str) + "\n")
    atomic.write_text(md, text)
    atomic.write_text(html, markdown_to_html(text, f"Model card: {card['study']}"))
    return card


def tumor_mask_text(facts: ReportFacts, samples: pd.DataFrame) -> str:
    """The patients scored from a predicted mask (segment.crop_mask) and, when the features read
    predicted masks too (segment.feature_mask), which masks the feature models' features came from."""
    seg = facts.config["segment"]
    crops = predicted_crop_sentence(predicted_crop_subjects(seg["crop_mask"], samples), len(samples))
    features = ""
    mode = seg.get("feature_mask", "manual")  # an archive of a run before the key: manual
    if mode != "manual" and facts.masked_feature_models:
        source = feature_mask_source(mode, predicted_crop_subjects(mode, samples), len(samples))
        features = f"The features of {', '.join(facts.masked_feature_models)} were computed from {source}."
    return " ".join(filter(None, [crops, features]))
