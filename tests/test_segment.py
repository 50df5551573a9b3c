"""The segmentation stage (oncoflow.segment, workflow/rules/segment.smk): per-fold tumor segmenters
learned from the study's own manual masks, cross-fitted predicted masks, their scores, and the
crop's choice of mask (segment.crop_mask)."""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import fields
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from oncoflow.segment.crossfit import check_predicted_subject, check_segmenter_inputs, prediction_folds
from oncoflow.segment.jobs import fit_fold_segmenter, segment_subject, segmentation_summary
from oncoflow.segment.scores import score_mask
from oncoflow.segment.segmenter import SegmenterConfig, load_segmenter, predict_mask, train_segmenter
from oncoflow.segment.settings import CROP_MASKS, SegmentSettings, segment_settings
from oncoflow.segment.slices import load_slices
from oncoflow.train.folds import FoldError
from workflow_helpers import REPO, changed_config, planned_jobs, run_snakemake, tiny_config

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]["segment"]
MODALITIES = ["t1", "t1ce", "t2", "flair"]
# Small enough for CI: the tiny cohort's half-resolution slices are ~50 pixels across, its tumors a
# few dozen voxels, fold 0 trains on 8 patients (~140 slices). Measured: 80 epochs ~9 s CPU, test
# Dice 0.12-0.59 (mean 0.35); 12 epochs at lr 0.005 left every mask empty or everywhere.
TEST_SEGMENTER = {"architecture": "unet", "inputs": MODALITIES, "size": 48, "margin_mm": 5.0, "epochs": 80,
                  "batch_size": 8, "lr": 0.01, "threshold": 0.5, "seed": 7}


def resolved(config: dict) -> dict:
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return config


def plan_for(tiny_cohort: Path, **segment: object):
    from oncoflow.plan import StudyPlan

    config = tiny_config()
    config["cohort"]["samples"] = str(tiny_cohort)
    if segment:
        config["segment"] = dict(segment)
    return StudyPlan.from_config(resolved(config))


def test_segment_defaults_are_the_schema_defaults() -> None:
    props = SCHEMA["properties"]
    for f in fields(SegmentSettings):
        default = f.default_factory() if callable(f.default_factory) else f.default
        assert props[f.name]["default"] == default, f.name
    assert tuple(props["crop_mask"]["enum"]) == CROP_MASKS and props["crop_mask"]["default"] == "manual"


def test_segment_is_off_by_default_and_crops_keep_the_manual_mask(tiny_cohort: Path) -> None:
    plan = plan_for(tiny_cohort)
    assert not plan.segment.active and plan.segment_targets() == []
    assert all(plan.crop_tumor_mask(s) == f"{plan.results}/subjects/{s}/coreg/tumor_mask.nii.gz"
               for s in plan.subjects)


def test_every_predicted_mask_a_crop_uses_comes_from_a_segmenter_blind_to_that_patient(tiny_cohort: Path) -> None:
    plan = plan_for(tiny_cohort, crop_mask="predicted")
    splits = plan.splits.set_index(["fold", "subject"])["role"]
    assert sorted(plan.prediction_folds) == sorted(plan.subjects)
    for s in plan.subjects:
        fold = plan.prediction_folds[s]
        assert plan.crop_tumor_mask(s) == f"{plan.results}/segment/fold{fold}/masks/{s}.nii.gz"
        assert splits[(fold, s)] in ("test", "external")
        assert s not in plan.segmenter_subjects(fold)
        assert s in plan.segmented_subjects(fold)
    for fold in plan.folds:  # a segmenter trains on its fold's train + val patients only
        roles = {splits[(fold, s)] for s in plan.segmenter_subjects(fold)}
        assert roles == {"train", "val"}, roles
    # an internal patient is tested once; external patients by the first fold
    external = plan.splits.loc[plan.splits["role"] == "external", "subject"].unique()
    assert len(external) and all(plan.prediction_folds[s] == 0 for s in external)
    trained = plan.segmenter_subjects(0)[0]  # the workflow refuses to plan a leaky mask
    with pytest.raises(FoldError, match=rf"{trained}.*fold 0: that fold's segmenter may only predict"):
        plan.check_segmented(trained, 0)
    # where the sheet has a mask, predicted_where_missing keeps it
    plan = plan_for(tiny_cohort, crop_mask="predicted_where_missing")
    assert not any(plan.crop_uses_predicted_mask(s) for s in plan.subjects)


def test_segment_settings_refuse_unknown_inputs_and_atlas_crops(tiny_cohort: Path) -> None:
    from oncoflow.config import ConfigError

    config = resolved(tiny_config())
    config["segment"]["inputs"] = ["pd"]
    with pytest.raises(ConfigError, match=r"segment\.inputs.*'pd'"):
        segment_settings(config)
    config = resolved(tiny_config())
    config["segment"]["crop_mask"] = "predicted"
    config["preprocess"]["atlas"]["activate"] = True
    with pytest.raises(ConfigError, match="atlas"):
        segment_settings(config)


def subject_paths(run: Path, subject: str) -> tuple[dict[str, Path], Path, Path]:
    folder = run / "results" / "demo" / "subjects" / subject
    return ({m: folder / "brain" / f"{m}.nii.gz" for m in MODALITIES}, folder / "brain" / "brain_mask.nii.gz",
            folder / "coreg" / "tumor_mask.nii.gz")


def predicted_and_manual(checkpoint: Path, run: Path, subject: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    net, cfg = load_segmenter(checkpoint)
    images, brain_path, manual_path = subject_paths(run, subject)
    slices = load_slices(subject, images, brain_path, manual_path, cfg.size, cfg.margin_mm)
    brain = np.asarray(nib.as_closest_canonical(nib.load(brain_path)).dataobj) > 0.5
    manual = np.asarray(nib.as_closest_canonical(nib.load(manual_path)).dataobj) > 0.5
    return predict_mask(net, cfg, slices, brain), manual, slices.grid.zooms


@pytest.fixture(scope="module")
def fold0_segmenter(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Fold 0's segmenter on the finished run's preprocessed phantoms (train + val patients)."""
    splits = pd.read_csv(finished_run / "results/demo/folds/splits.tsv", sep="\t")
    train = splits.loc[(splits["fold"] == 0) & splits["role"].isin(["train", "val"]), "subject"].tolist()
    tested = splits.loc[(splits["fold"] == 0) & (splits["role"] == "test"), "subject"].tolist()
    out = tmp_path_factory.mktemp("segmenter")
    cfg = SegmenterConfig(**TEST_SEGMENTER)
    start = time.process_time()
    data = {s: load_slices(s, *subject_paths(finished_run, s), cfg.size, cfg.margin_mm) for s in train}
    train_segmenter(data, cfg, out / "fold0.pt", fold=0)
    print(f"fold-0 segmenter: {len(train)} patients, {cfg.epochs} epochs, "
          f"{time.process_time() - start:.1f} s CPU")
    return {"splits": splits, "train": train, "tested": tested, "checkpoint": out / "fold0.pt", "data": data,
            "cfg": cfg, "out": out}


def test_segmenter_learns_the_phantom_tumors(finished_run: Path, fold0_segmenter: dict) -> None:
    """On fold 0's test patients (never trained on) the predicted masks overlap the manual ones far
    better than a random mask of the same volume inside the brain."""
    rng = np.random.default_rng(0)
    dice, chance = [], []
    for s in fold0_segmenter["tested"]:
        predicted, manual, zooms = predicted_and_manual(fold0_segmenter["checkpoint"], finished_run, s)
        scores = score_mask(predicted, manual, zooms)
        dice.append(scores["dice"])
        brain = np.asarray(nib.as_closest_canonical(nib.load(subject_paths(finished_run, s)[1])).dataobj) > 0.5
        random_mask = np.zeros(manual.size, bool)  # as many voxels as the tumor, anywhere in the brain
        random_mask[rng.choice(np.flatnonzero(brain), int(manual.sum()), replace=False)] = True
        random_mask = random_mask.reshape(manual.shape)
        chance.append(score_mask(random_mask, manual, zooms)["dice"])
        print(s, {k: round(v, 3) for k, v in scores.items()})
    print(f"fold-0 test Dice {np.round(dice, 3).tolist()} (random mask {np.round(chance, 3).tolist()})")
    assert np.mean(dice) > 0.2 and np.mean(dice) > np.mean(chance) + 0.15 and min(dice) > 0, (dice, chance)


def test_a_patients_mask_changes_once_it_trains_the_segmenter_and_the_workflow_refuses_that(
        finished_run: Path, fold0_segmenter: dict) -> None:
    """Cross-fitting is not a formality: the same segmenter recipe with one test patient moved into
    its training patients predicts that patient differently (it has seen its outline). The
    segment jobs refuse both ways of doing so."""
    patient = fold0_segmenter["tested"][0]
    cfg, out = fold0_segmenter["cfg"], fold0_segmenter["out"]
    data = {**fold0_segmenter["data"],
            patient: load_slices(patient, *subject_paths(finished_run, patient), cfg.size, cfg.margin_mm)}
    train_segmenter(data, cfg, out / "leaky.pt", fold=0)
    blind, manual, zooms = predicted_and_manual(fold0_segmenter["checkpoint"], finished_run, patient)
    leaky, _, _ = predicted_and_manual(out / "leaky.pt", finished_run, patient)
    dice_blind, dice_leaky = score_mask(blind, manual, zooms)["dice"], score_mask(leaky, manual, zooms)["dice"]
    print(f"{patient}: Dice blind {dice_blind:.3f}, after training on it {dice_leaky:.3f}")  # measured 0.118, 0.667
    assert blind.any() and not np.array_equal(blind, leaky) and dice_leaky > dice_blind
    splits = fold0_segmenter["splits"]
    with pytest.raises(FoldError, match=rf"{patient}.*role: test"):
        check_segmenter_inputs([*fold0_segmenter["train"], patient], splits, 0)
    trained = fold0_segmenter["train"][0]
    with pytest.raises(FoldError, match=rf"{trained}.*fold 0: that fold's segmenter may only predict"):
        check_predicted_subject(trained, splits, 0)
    images, brain, manual_path = subject_paths(finished_run, trained)
    with pytest.raises(FoldError):
        segment_subject(trained, 0, images, brain, manual_path, fold0_segmenter["checkpoint"], splits,
                        out / "no.nii.gz", out / "no.tsv")
    with pytest.raises(FoldError):
        fit_fold_segmenter(0, [patient], [], [], [], {**TEST_SEGMENTER}, splits, out / "no.pt", out / "no.tsv")
    assert prediction_folds(splits)[patient] == 0


def assert_montage_draws_the_predicted_outline(results: Path, subject: str, tmp_path: Path) -> None:
    """The QC montage with the predicted outline beside the manual one differs from the one without
    it and names its volume."""
    from oncoflow.preprocess.qc import plot_montage, subject_qc

    folder = results / "subjects" / subject
    images = {m: folder / "coreg" / f"{m}.nii.gz" for m in MODALITIES}
    qc = subject_qc(subject, images, folder / "brain/brain_mask.nii.gz", reference="t1ce",
                    tumor_mask=folder / "coreg/tumor_mask.nii.gz")
    plain, both = tmp_path / "plain.png", tmp_path / "both.png"
    for out, predicted in ((plain, None), (both, results / f"segment/fold0/masks/{subject}.nii.gz")):
        plot_montage(qc, images, folder / "brain/brain_mask.nii.gz", out, tumor_mask=folder / "coreg/tumor_mask.nii.gz",
                     predicted_mask=predicted)
    assert plain.read_bytes() != both.read_bytes()


def test_segment_rules_write_fold_tables_and_crops_read_the_predicted_masks(finished_run: Path,
                                                                            tmp_path: Path) -> None:
    """The workflow on the finished run with segment on (2 epochs): fold 0's segmenter, a predicted
    mask on the reference grid per test / external patient, the fold's table; then a dry run with
    crop_mask predicted plans every crop again from predicted masks."""
    config = tiny_config()
    config["segment"] = {"activate": True, "epochs": 2, "size": 32, "inputs": MODALITIES}
    results = finished_run / "results" / "demo"
    try:
        with changed_config(finished_run, config):
            start = time.perf_counter()
            done = run_snakemake(finished_run, "--cores", "2", "results/demo/segment/fold0/segmentation.tsv")
            assert done.returncode == 0, done.stderr[-5000:]
            print(f"segment rules for fold 0: {time.perf_counter() - start:.0f} s")
            table = pd.read_csv(results / "segment/fold0/segmentation.tsv", sep="\t")
            splits = pd.read_csv(results / "folds/splits.tsv", sep="\t")
            expected = splits.loc[(splits["fold"] == 0) & splits["role"].isin(["test", "external"]), "subject"]
            assert sorted(table["subject"]) == sorted(expected)
            assert {"dice", "hd95_mm", "manual_ml", "predicted_ml", "volume_difference_ml", "detected"} <= set(table)
            assert table["manual_ml"].gt(0).all() and table["dice"].between(0, 1).all()
            subject = table["subject"].iloc[0]
            predicted = nib.load(results / f"segment/fold0/masks/{subject}.nii.gz")
            brain = nib.load(results / f"subjects/{subject}/brain/brain_mask.nii.gz")
            assert predicted.shape == brain.shape and np.allclose(predicted.affine, brain.affine)
            assert_montage_draws_the_predicted_outline(results, subject, tmp_path)
            summary = segmentation_summary([results / "segment/fold0/segmentation.tsv"], tmp_path / "summary.tsv")
            internal = table[table["role"] == "test"]
            row = summary[(summary["fold"] == "0") & (summary["role"] == "test")].iloc[0]
            assert row["patients"] == len(internal) and row["dice_mean"] == pytest.approx(internal["dice"].mean())
            assert set(summary["fold"]) == {"0", "cross-fitted"}
            config["segment"]["crop_mask"] = "predicted"
        with changed_config(finished_run, config):
            dry = run_snakemake(finished_run, "-n", "--cores", "2")
            assert dry.returncode == 0, dry.stderr[-5000:]
            jobs = planned_jobs(dry.stdout)
            n_subjects = len(splits["subject"].unique())
            assert jobs.get("crop_tumor") == n_subjects, jobs
            assert jobs.get("tumor_segmenter") == 2 and jobs.get("predicted_tumor_mask"), jobs  # folds 1, 2
            assert "segment/fold0/masks/" in dry.stdout
    finally:  # the shared run keeps only its own outputs
        for folder in ("segment", "logs/tumor_segmenter", "logs/predicted_tumor_mask", "logs/segmentation_table",
                       "benchmarks/tumor_segmenter", "benchmarks/predicted_tumor_mask",
                       "benchmarks/segmentation_table"):
            shutil.rmtree(results / folder, ignore_errors=True)


def test_methods_say_how_the_segmenters_were_trained_and_which_masks_the_crops_used() -> None:
    from oncoflow.report.methods import Cohort, render_methods
    from workflow_helpers import report_facts_for

    off = render_methods(report_facts_for(tiny_config()), Cohort(12, 6, 2, 1, 14), software={})
    assert "segmenter" not in off
    config = tiny_config()
    config["segment"] = {"crop_mask": "predicted"}
    text = render_methods(report_facts_for(config), Cohort(12, 6, 2, 1, 14), software={})
    assert "2D U-Net" in text and "training and inner-validation patients' manual tumor masks only" in text
    assert "no mask came from a segmenter trained on that patient" in text
    assert "Ronneberger O" in text and "20 epochs" in text
    config["segment"] = {"crop_mask": "predicted_where_missing", "architecture": "segresnet"}
    text = render_methods(report_facts_for(config), Cohort(12, 6, 2, 1, 14), software={})
    assert "SegResNet" in text and "Patients without a manual mask were cropped from their predicted mask" in text
