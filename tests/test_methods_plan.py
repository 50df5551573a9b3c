"""methods.md against the plan, both ways, for the demo config and every shipped study: each rule
family in a dry run of the study (shrunk as in test_studies) is described with its settings, and
a step whose rule is not planned is not described. A new rule family fails here until methods.py
describes it (or it is listed in NOT_A_METHOD with the reason)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from snakemake.utils import validate
from test_studies import SCHEMA, STUDY_SHAPES, shrink, study_config, tiny_cohort_for
from workflow_helpers import planned_jobs, report_facts_for, run_snakemake, tiny_config

from oncoflow.report.methods import Cohort, render_methods

Config = dict[str, Any]
Phrases = Callable[[Config], list[str]]

def _combat(c: Config) -> list[str]:
    return ["ComBat", "fitted in each fold on the patients"] if c["harmonisation"]["method"] == "combat" else []


# rule -> phrases methods.md must contain when the rule is planned (given the config's settings)
DESCRIBED: dict[str, Phrases] = {
    "convert_dicom": lambda c: ["dcm2niix", "de-identified"],
    "import_nifti": lambda c: ["provided as NIfTI"],
    "correct_bias": lambda c: (["N4", f"shrink factor {c['preprocess']['n4']['shrink_factor']}"]
                               if c["preprocess"]["n4"]["activate"] else ["No bias-field correction"]),
    "register_modalities": lambda c: (["already co-registered"] if c["preprocess"]["registration"]["transform"] == "none"
                                      else ["registered onto", "Mattes mutual information"]),
    "transform_tumor_mask": lambda c: (["already co-registered"] if c["preprocess"]["registration"]["transform"] == "none"
                                       else ["tumor mask followed the registration"]),
    "extract_brain": lambda c: (["No brain extraction"] if c["preprocess"]["brain_extraction"]["backend"] == "none"
                                else ["brain was extracted"]),
    "register_to_atlas": lambda c: ["was registered to", "carried onto the template grid"],
    "crop_tumor": lambda c: ["Tumor-centred crops", f"{c['crop']['size']} x {c['crop']['size']} pixels"],
    "split_folds": lambda c: [{"stratified": f"{c['cv']['folds']} stratified, patient-level cross-validation folds",
                               "site_grouped": f"{c['cv']['folds']} stratified cross-validation folds grouped by site",
                               "leave_one_site_out": "Validation was leave-one-site-out"}[c["cv"]["scheme"]],
                              f"seed {c['cv']['seed']}"],
    "train_model": lambda c: ["was trained", "epochs", {"val_loss": "lowest validation loss",
                                                        "val_auc": "highest validation AUC"}[c["train"]["select_on"]],
                              "augmented"],
    "tabulate_selection": lambda c: ["The epoch kept was the one with"],
    "explanation_maps": lambda c: ["Explanation maps", "model-parameter randomisation", "opens over the patient's scan"],
    "tabulate_explanations": lambda c: ["tables/explanation_sanity.tsv",
                                        f"{c['explain']['max_random_spearman']:.2f} or more"],
    "pretrain_model": lambda c: ["Pretraining `", "label-free task"],
    "fuse_predictions": lambda c: ["Late fusion"],
    "train_superres": lambda c: ["super-resolution", "also cross-validation test patients", "never read a label"],
    "apply_superres": lambda c: ["after 3D super-resolution"],
    "evaluate_superres": lambda c: ["PSNR, SSIM"],
    "extract_radiomics": lambda c: ["Radiomic features", "MIRP", "not cropped",
                                    (f"fixed number of {c['radiomics']['settings']['bin_number']} bins"
                                     if c["radiomics"]["settings"]["discretisation"] == "fixed_bin_number"
                                     else f"bin width of {c['radiomics']['settings']['bin_width']:g}")],
    "extract_deep_features": lambda c: ["Frozen deep features", "passed once through that network's encoder"],
    "interpolate_image": lambda c: ["cubic B-spline interpolation", "`radiomics_interp`"],
    "extract_baseline_features": lambda c: ["A baseline model (`baseline`)", "log tumor volume"],
    "fit_baseline_model": lambda c: ["A baseline model (`baseline`)", "training patients only", *_combat(c)],
    "fit_radiomics_model": lambda c: ["LASSO", "training patients only", *_combat(c)],
    "evaluate_models": lambda c: ["pooled out-of-fold predictions", "AUCs are reported", "fold threshold"],
    "compare_models": lambda c: (["DeLong's"] if len(report_facts_for(c, c["baseline"]["activate"]).models) > 1
                                 else ["no pairwise comparison"]),
    "compute_curves": lambda c: ["Decision curves", "Calibration is shown"],
    "plot_curves": lambda c: ["Decision curves"],
    "write_provenance": lambda c: ["provenance.json"],
    "plot_qc_montage": lambda c: ["a montage of the preprocessed images (three orthogonal slices"],
    "summarize_qc": lambda c: ["quality-control flags"],
    "write_participant_flow": lambda c: ["participant flow"],
    "write_characteristics": lambda c: ["characteristics of each cohort and fold"],
    "write_failures": lambda c: ["misclassified patients"],
    "write_checklist": lambda c: ["reporting checklists"],
    "evaluate_sites": lambda c: ["reported per site"],
}
# rule -> phrases methods.md must NOT contain when the rule is not planned
ONLY_IF_PLANNED: dict[str, list[str]] = {
    "explanation_maps": ["Explanation maps", "opens over the patient's scan"],
    "convert_dicom": ["dcm2niix", "DICOM series"],
    "import_nifti": ["provided as NIfTI"],
    "crop_tumor": ["Tumor-centred crops", "normalised within the", "axial slices", "3D models read"],
    "train_model": ["epoch selection", "the epoch with the best", "was trained from", "augmented", "early stopping", "AdamW"],
    "pretrain_model": ["Pretraining `", "pretrained"],
    "fuse_predictions": ["Late fusion", "stacking"],
    "train_superres": ["super-resolution", "generator"],
    "extract_radiomics": ["Radiomic", "MIRP"],
    "extract_deep_features": ["Frozen deep features"],
    "fit_radiomics_model": ["LASSO", "clinical logistic model", "rad-score"],
    "interpolate_image": ["`radiomics_interp`"],
    "fit_baseline_model": ["A baseline model"],
    "evaluate_sites": ["per site"],
}
NOT_A_METHOD = {"all": "the target list", "write_methods": "writes this text", "archive": "the archive target",
                "write_archive": "packs the results",
                "write_model_card": "summarises the results for the models' users (Mitchell et al. 2019)",
                "render_report_pages": "shows the tables and figures already described, in the report",
                "collect_report_overlays": "picks which of the maps already described the report embeds"}


def sheet_cohort(config: Config) -> Cohort:
    """The methods' counts from the sample sheet the dry run read."""
    sheet = pd.read_csv(config["cohort"]["samples"], sep="\t", dtype=str).fillna("")
    y = sheet[config["study"]["label"]] == str(config["study"]["positive"])
    external = sheet["cohort"].isin(config["cohort"]["external"])
    dicom = int((sheet.get("dicom", pd.Series([""] * len(sheet))) != "").sum())
    return Cohort(int((~external).sum()), int((y & ~external).sum()), int(external.sum()), int((y & external).sum()),
                  dicom)


def plan_and_methods(config: Config, workdir: Path) -> tuple[dict[str, int], str]:
    configfile = workdir / "study.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_snakemake(workdir, "-n", "--cores", "1", "--configfile", str(configfile))
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = copy.deepcopy(config)
    validate(resolved, str(SCHEMA), set_default=True)
    jobs = planned_jobs(result.stdout)
    text = render_methods(report_facts_for(resolved, "fit_baseline_model" in jobs), sheet_cohort(resolved), software={})
    return jobs, text


def check_both_ways(config: Config, jobs: dict[str, int], text: str) -> None:
    resolved = copy.deepcopy(config)
    validate(resolved, str(SCHEMA), set_default=True)
    undescribed = sorted(set(jobs) - set(DESCRIBED) - set(NOT_A_METHOD))
    assert not undescribed, f"rules planned but not known to the methods check: {undescribed}"
    for rule in jobs:
        for phrase in DESCRIBED.get(rule, lambda c: [])(resolved):
            assert phrase in text, f"rule {rule} is planned but methods.md lacks {phrase!r}"
    for rule, phrases in ONLY_IF_PLANNED.items():
        if rule not in jobs:
            for phrase in phrases:
                assert phrase not in text, f"rule {rule} is not planned but methods.md says {phrase!r}"


def demo_config(workdir: Path) -> Config:
    from oncoflow.demo import make_demo_cohort

    sheet = make_demo_cohort(workdir / "data", 12, seed=5, voxel_scale=4.0, external_fraction=0.25)
    config = tiny_config()
    config["cohort"]["samples"] = str(sheet)
    return config


def study_plan_config(name: str, workdir: Path) -> Config:
    n = 12 if STUDY_SHAPES[name].external_fraction else 8
    sheet = tiny_cohort_for(name, workdir, n, positives=0.5, voxel_scale=4.0)  # only the sheet is read
    config = shrink(study_config(name), sheet, workdir / "weights", write_weights=False)
    if name == "lgg_radiogenomics":  # the demo is DICOM of a whole head, masks on t1ce
        config["preprocess"]["reference"] = "t1ce"
    return config


@pytest.mark.parametrize("name", ["demo", *sorted(STUDY_SHAPES)])
def test_methods_describe_exactly_the_planned_rules(name: str, tmp_path: Path) -> None:
    config = demo_config(tmp_path) if name == "demo" else study_plan_config(name, tmp_path)
    jobs, text = plan_and_methods(config, tmp_path)
    check_both_ways(config, jobs, text)


def test_hcc_methods_name_the_delong_comparisons_and_no_epochs(tmp_path: Path) -> None:
    config = study_plan_config("hcc_tace_radiomics_sr", tmp_path)
    jobs, text = plan_and_methods(config, tmp_path)
    assert "train_model" not in jobs and "compare_models" in jobs
    assert "DeLong's" in text and "Holm's method" in text
    assert "epoch selection" not in text and "crops" not in text.replace("not cropped", "")
    assert "normalisation within" not in text and "for intensity normalisation" not in text


def test_hcc_methods_describe_combat_when_it_runs(tmp_path: Path) -> None:
    """harmonisation.method combat (with a site column): the fits' sentence names ComBat."""
    config = study_plan_config("hcc_tace_radiomics_sr", tmp_path)
    sheet = pd.read_csv(config["cohort"]["samples"], sep="\t", dtype=str, keep_default_na=False)
    sheet["site"] = ["A", "B"] * (len(sheet) // 2) + ["A"] * (len(sheet) % 2)
    sheet.to_csv(config["cohort"]["samples"], sep="\t", index=False)
    config["cohort"]["site"] = "site"
    config["harmonisation"] = {"method": "combat"}
    jobs, text = plan_and_methods(config, tmp_path)
    check_both_ways(config, jobs, text)
    assert "fit_radiomics_model" in jobs and "ComBat" in text and "`site` column" in text


def test_the_check_fails_on_a_described_step_that_is_not_planned() -> None:
    """The check can fail: methods claiming CNN training for a plan without train_model."""
    config = tiny_config()
    text = render_methods(report_facts_for(config), Cohort(10, 5, dicom=10), software={})
    with pytest.raises(AssertionError, match="is not planned but methods.md says"):
        check_both_ways(config, {"split_folds": 1, "convert_dicom": 10}, text)
    with pytest.raises(AssertionError, match="not known to the methods check"):
        check_both_ways(config, {"segment_liver": 1}, text)
