"""End to end: the real workflow on a tiny demo cohort, then reruns that touch only what changed.
(`finished_run`, the run itself, is in conftest.py: the reproducibility and SLURM tests share it.)"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import changed_config, planned_jobs, run_snakemake, tiny_config

from oncoflow.metrics.conformal import covers, fit_thresholds, prediction_sets
from oncoflow.metrics.recalibration import apply_recalibration, expit, fit_recalibration, logit

PREPROCESSING = {"convert_dicom", "correct_bias", "register_modalities", "transform_tumor_mask", "extract_brain",
                 "crop_tumor", "plot_qc_montage"}

pytestmark = pytest.mark.slow


def test_metrics_table_has_a_row_per_model_and_cohort(finished_run: Path) -> None:
    metrics = pd.read_csv(finished_run / "results/demo/tables/metrics.tsv", sep="\t")
    models = {"t1ce_resnet18", "flair_resnet18", "flair+t1ce_resnet18", "fusion_mean", "fusion_lr", "baseline"}
    assert set(metrics["model"]) == models
    assert set(zip(metrics["model"], metrics["cohort"])) == {
        (m, c) for m in models for c in ("cv", "external")
    }
    for column in ("n", "accuracy", "sensitivity", "specificity", "auc", "auc_ci_low", "auc_ci_high",
                   "auc_fold_mean", "auc_fold_sd", "cal_intercept", "cal_slope", "brier", "brier_ci_low"):
        assert column in metrics.columns
    cv = metrics[metrics["cohort"] == "cv"]
    assert (cv["n"] == 12).all()  # every internal subject tested exactly once
    assert ((cv["auc_ci_low"] <= cv["auc"]) & (cv["auc"] <= cv["auc_ci_high"])).all()
    assert (finished_run / "results/demo/tables/metrics.md").read_text().startswith("| model")


def test_risks_follow_each_models_recalibration(finished_run: Path) -> None:
    """CNNs (weighted_loss; their validation patients chose the epoch) and their mean fusion: the
    prior shift by the fold's training counts; the lr stacker: its own probabilities; the baseline
    (validation patients selected nothing): logistic recalibration on them."""
    pooled = pd.read_csv(finished_run / "results/demo/tables/predictions.tsv", sep="\t")
    for (model, fold), part in pooled.groupby(["model", "fold"]):
        p, risk = part["probability"].to_numpy(), part["risk"].to_numpy()
        train = part.loc[part["role"] == "train", "y_true"]
        shifted = expit(logit(p) - np.log((train == 0).sum() / (train == 1).sum()))
        if model == "fusion_lr":
            np.testing.assert_allclose(risk, p, atol=1e-6, err_msg=model)
        elif model == "baseline":
            val = part[part["role"] == "val"]
            a, b, _ = fit_recalibration(val["y_true"].to_numpy(), val["probability"].to_numpy())
            np.testing.assert_allclose(risk, apply_recalibration(p, a, b), atol=1e-5, err_msg=model)
        else:
            np.testing.assert_allclose(risk, shifted, atol=1e-5, err_msg=f"{model} fold {fold}")


def test_prediction_sets_come_from_each_folds_validation_patients(finished_run: Path) -> None:
    """Only the baseline's validation patients selected nothing, so only it gets sets: on every test
    and external row, from thresholds that its fold's validation rows of predictions.tsv give
    again; prediction_sets.tsv counts the same sets."""
    results = finished_run / "results/demo/tables"
    pooled = pd.read_csv(results / "predictions.tsv", sep="\t", keep_default_na=False)
    target = pooled["role"].isin(["test", "external"])
    has = pooled["prediction_set"] != ""
    assert (has == (target & (pooled["model"] == "baseline"))).all()
    for _, part in pooled[pooled["model"] == "baseline"].groupby("fold"):
        val, rows = part[part["role"] == "val"], part[part["role"].isin(["test", "external"])]
        t = fit_thresholds(val["y_true"].to_numpy(), val["risk"].to_numpy(dtype=float), 0.1, by_class=True)
        assert list(prediction_sets(rows["risk"].to_numpy(dtype=float), t)) == list(rows["prediction_set"])
    table = pd.read_csv(results / "prediction_sets.tsv", sep="\t")
    assert set(zip(table["model"], table["cohort"], table["site"])) == {("baseline", "cv", "all"),
                                                                      ("baseline", "external", "all")}
    cv = table[table["cohort"] == "cv"].iloc[0]
    test = pooled[(pooled["model"] == "baseline") & (pooled["role"] == "test")]
    assert cv["n"] == len(test) == 12 and cv["target"] == pytest.approx(0.9)
    assert cv["coverage"] == pytest.approx(covers(test["prediction_set"].to_numpy(), test["y_true"].to_numpy()).mean())
    assert cv["coverage_ci_low"] <= cv["coverage"] <= cv["coverage_ci_high"]
    assert cv["uncertain"] == pytest.approx((test["prediction_set"] == "uncertain").mean())
    card = (finished_run / "results/demo/reporting/model_card.md").read_text()
    assert f"| baseline | cv | all | 12 | {cv['coverage']:.3f} ({cv['coverage_ci_low']:.3f} to" in card
    assert "error rate 0.1" in card


def test_every_stage_wrote_its_outputs_logs_and_benchmarks(finished_run: Path) -> None:
    results = finished_run / "results/demo"
    subject = results / "subjects/demo001"
    for stage in ("raw", "n4", "coreg", "brain"):
        assert {p.name for p in (subject / stage).glob("*.nii.gz")} >= {
            "flair.nii.gz", "t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz"}, stage
    assert (subject / "crop/crop.npz").exists()
    qc = pd.read_csv(results / "qc/qc.tsv", sep="\t")
    assert len(qc) == 14 and (results / "qc/demo001.png").stat().st_size > 10_000
    assert {"flag", "mi_after_t2", "brain_ml", "tumor_in_brain", "p99_flair"} <= set(qc.columns)
    splits = pd.read_csv(results / "folds/splits.tsv", sep="\t")
    assert set(splits["role"]) == {"train", "val", "test", "external"}
    for rule in (*PREPROCESSING, "train_model", "fuse_predictions", "evaluate_models", "write_methods"):
        assert list((results / "logs" / rule).glob("*.log")), rule
        assert list((results / "benchmarks" / rule).glob("*.tsv")), rule
    provenance = (results / "provenance.json").read_text()
    assert '"sha256"' in provenance and '"torch"' in provenance
    methods = (results / "methods.md").read_text()
    assert "14 patients" not in methods and "12 patients (" in methods and "external cohort of 2" in methods
    assert "`flair+t1ce_resnet18`" in methods and "## References" in methods


def test_no_identifier_reaches_the_results(finished_run: Path) -> None:
    sidecar = (finished_run / "results/demo/subjects/demo001/raw/t1ce.json").read_text()
    assert "DOE" not in sidecar and "MRN" not in sidecar


def test_second_run_has_nothing_to_do(finished_run: Path) -> None:
    result = run_snakemake(finished_run, "-n", "--cores", "2")
    assert result.returncode == 0
    assert planned_jobs(result.stdout) == {}, result.stdout[-3000:]


def test_configfile_on_the_command_line_replaces_the_default_config(finished_run: Path, tmp_path: Path) -> None:
    """`--configfile config/studies/x.yaml` runs that study alone: Snakemake's default merge
    would keep the default config's other modalities and models beside the study's."""
    import yaml

    config = tiny_config()
    config["study"]["name"] = "two_modalities"
    config["ingest"]["modalities"] = {m: config["ingest"]["modalities"][m] for m in ("t1ce", "flair")}
    config["preprocess"]["reference"] = "t1ce"
    config["models"][0]["inputs"] = ["flair"]
    config["fusion"] = {"methods": []}
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(config))
    result = run_snakemake(finished_run, "-n", "--cores", "2", "--configfile", str(study))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "results/two_modalities/subjects/" in result.stdout
    assert "/raw/flair.nii.gz" in result.stdout and "/raw/t2.nii.gz" not in result.stdout
    assert "t1ce_resnet18" not in result.stdout


def test_training_hyperparameter_reruns_training_only(finished_run: Path) -> None:
    config = tiny_config()
    config["models"][0]["epochs"] = 4
    with changed_config(finished_run, config):
        result = run_snakemake(finished_run, "-n", "--cores", "2")
    jobs = planned_jobs(result.stdout)
    assert jobs.get("train_model") == 9, result.stdout[-3000:]
    assert {"fuse_predictions", "evaluate_models", "write_provenance"} <= set(jobs)
    assert not PREPROCESSING & set(jobs) and "split_folds" not in jobs


def test_preprocessing_option_reruns_preprocessing_and_what_follows(finished_run: Path) -> None:
    config = copy.deepcopy(tiny_config())
    config["preprocess"]["registration"]["transform"] = "Affine"
    with changed_config(finished_run, config):
        result = run_snakemake(finished_run, "-n", "--cores", "2")
    jobs = planned_jobs(result.stdout)
    assert jobs.get("register_modalities") == 14
    assert "convert_dicom" not in jobs and "correct_bias" not in jobs
    assert jobs.get("train_model") == 9
