"""The segmentation stage (oncoflow.segment, workflow/rules/segment.smk): per-fold tumor segmenters
learned from the study's own manual masks, cross-fitted predicted masks, their scores, and the
crop's choice of mask (segment.crop_mask)."""

from __future__ import annotations

import copy
import os
import re
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
from workflow_helpers import REPO, changed_config, planned_jobs, run_snakemake, tiny_config, write_config

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


def test_a_predicted_mask_is_cropped_only_when_plausible(finished_run: Path, tmp_path: Path) -> None:
    """The bounds crop_tumor applies to a cross-fitted predicted mask (as predict does to a new
    subject's), on a real preprocessed phantom: its manual tumor passes, an empty mask, a mask
    below min_predicted_ml and one mostly outside the brain do not."""
    from oncoflow.segment.plausibility import predicted_mask_verdict
    from oncoflow.segment.settings import SegmentSettings

    subject = pd.read_csv(finished_run / "results/demo/folds/splits.tsv", sep="\t")["subject"].iloc[0]
    _, brain_path, manual_path = subject_paths(finished_run, subject)
    bounds = SegmentSettings().plausibility()
    assert predicted_mask_verdict(manual_path, brain_path, bounds) == ""
    img = nib.load(manual_path)
    brain = np.asarray(nib.load(brain_path).dataobj) > 0.5

    def verdict(mask: np.ndarray, limits: dict[str, float] = bounds) -> str:
        path = tmp_path / "mask.nii.gz"
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), img.affine), path)
        return predicted_mask_verdict(path, brain_path, limits)

    assert verdict(np.zeros(img.shape, bool)) == "empty"
    one = np.zeros(img.shape, bool)
    one[tuple(np.argwhere(brain)[0])] = True
    voxel_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000  # 0.12 ml at the tests' half resolution
    assert verdict(one, {**bounds, "min_predicted_ml": 2 * voxel_ml}).endswith(f"ml < {2 * voxel_ml:g} ml")
    outside = np.zeros(img.shape, bool)  # 5 ml of voxels outside the brain mask
    outside[tuple(np.argwhere(~brain)[: int(np.ceil(5 / voxel_ml))].T)] = True
    assert verdict(outside) == "0% inside the brain < 50%"


def test_a_fresh_run_cropping_from_predicted_masks_can_be_planned(tiny_cohort: Path, tmp_path: Path) -> None:
    """Nothing made yet: each subject's crop and QC montage wait for segmenters trained on other
    subjects' front halves, so they cannot sit in the subject's group job (Snakemake refused that
    DAG with "Error in group subject" until they left the group when segmenting)."""
    shutil.copytree(tiny_cohort.parent, tmp_path / "data" / "demo")
    config = tiny_config()
    config["segment"] = {"crop_mask": "predicted"}
    write_config(tmp_path, config)
    dry = run_snakemake(tmp_path, "-n", "--cores", "2")
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = planned_jobs(dry.stdout)
    assert jobs["extract_brain"] == jobs["crop_tumor"] == jobs["plot_qc_montage"] == 14, jobs  # every subject
    assert jobs["tumor_segmenter"] == 3 and jobs["predicted_tumor_mask"] == 12 + 2 * 3, jobs  # external: every fold


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
    assert "computed from the manual masks" not in text  # no feature model in this run
    with_baseline = render_methods(report_facts_for(config, baseline=True), Cohort(12, 6, 2, 1, 14), software={})
    assert "The features of `baseline` were computed from the manual masks, not from the predicted ones" in with_baseline
    config["segment"] = {"crop_mask": "predicted_where_missing", "architecture": "segresnet"}
    text = render_methods(report_facts_for(config), Cohort(12, 6, 2, 1, 14), software={})
    assert "SegResNet" in text and "Patients without a manual mask were cropped from their predicted mask" in text
    assert "and so scored" not in text  # nobody lacked a manual mask: no sentence naming patients
    text = render_methods(report_facts_for(config), Cohort(12, 6, 2, 1, 14), software={}, predicted_masks=["s13"])
    assert "1 of 14 patients (s13) were cropped, and so scored, from their cross-fitted predicted tumor mask" in text


def test_methods_say_which_masks_the_features_came_from_and_for_how_many_patients() -> None:
    """segment.feature_mask: methods.md names the feature models and the masks of their features,
    with the number of patients each (the plan's predicted_feature_subjects); deep features are not named."""
    import dataclasses

    from oncoflow.report.methods import Cohort, render_methods
    from workflow_helpers import report_facts_for

    def methods(feature_mask: str, predicted: list[str], crop_mask: str = "manual") -> str:
        config = tiny_config()
        config["segment"] = {"feature_mask": feature_mask, "crop_mask": crop_mask}
        config["radiomics"] = {"activate": True, "modality": "t1ce", "variants": ["original", "hdbet"]}
        facts = dataclasses.replace(report_facts_for(config, baseline=True), predicted_feature_subjects=tuple(predicted))
        return render_methods(facts, Cohort(12, 6, 2, 1, 14), software={})

    features = "The features of `radiomics_original` and `baseline` were computed from"
    text = methods("predicted", [f"s{k}" for k in range(14)])
    assert "A tumor segmenter" in text and "crop used its predicted mask" not in text  # on for the features alone
    assert (f"{features} the cross-fitted predicted masks of all 14 patients (each made by the segmenter of the fold "
            "in which that patient was tested, never by one trained on it)") in text
    text = methods("predicted_where_missing", ["s13"], crop_mask="predicted_where_missing")
    assert (f"{features} the manual masks for 13 of 14 patients and from the cross-fitted predicted masks for the "
            "1 without one (s13)") in text
    assert f"{features} the manual masks (all 14 patients had one" in methods("predicted_where_missing", [])
    assert f"{features} the manual masks, not from the predicted ones" in methods("manual", [], crop_mask="predicted")
    assert "hdbet" in text and "hdbet" not in text.split("The features of ")[1].split(" were computed")[0]


def test_feature_masks_are_the_cross_fitted_ones_in_a_dry_run(tiny_cohort: Path, tmp_path: Path) -> None:
    """feature_mask predicted: a dry run plans the baseline's and the radiomics' features (original
    and interp) on each patient's cross-fitted mask, fold k's segmenter's mask for exactly the
    patients fold k tests (external ones: fold 0's), never the manual mask."""
    from oncoflow.plan import StudyPlan
    from workflow_helpers import write_config

    shutil.copytree(tiny_cohort.parent, tmp_path / "data" / "demo")
    config = tiny_config()
    config["segment"] = {"feature_mask": "predicted"}
    config["radiomics"] = {"activate": True, "modality": "t1ce", "variants": ["original", "interp"]}
    write_config(tmp_path, config)
    start = os.times()
    dry = run_snakemake(tmp_path, "-n", "results/demo/baseline/features.tsv",
                        "results/demo/radiomics/original/features.tsv", "results/demo/radiomics/interp/features.tsv")
    end = os.times()
    print(f"dry run: {end.children_user + end.children_system - start.children_user - start.children_system:.1f} "
          f"s CPU, {end.elapsed - start.elapsed:.1f} s wall")
    assert dry.returncode == 0, dry.stderr[-5000:]
    jobs = planned_jobs(dry.stdout)
    assert jobs.get("extract_baseline_features") == 1 and jobs.get("extract_radiomics") == 2, jobs
    assert jobs.get("tumor_segmenter") == 3 and "crop_tumor" not in jobs, jobs

    def inputs(rule: str, output: str) -> list[str]:
        blocks = [b for b in dry.stdout.split("\nrule ")[1:] if b.startswith(f"{rule}:") and f"output: {output}" in b]
        assert len(blocks) == 1, (rule, output)
        return re.search(r"^\s+input: (.*)$", blocks[0], re.M).group(1).split(", ")

    splits = StudyPlan.from_config(resolved({**config, "cohort": {**config["cohort"],
                                                                   "samples": str(tiny_cohort)}})).splits
    roles = splits.set_index(["fold", "subject"])["role"]
    internal = splits.loc[splits["role"] == "test", "subject"]
    masks = [p for p in inputs("extract_baseline_features", "results/demo/baseline/features.tsv") if "mask" in p]
    feature_masks = [p for p in masks if "brain_mask" not in p]
    assert len(feature_masks) == splits["subject"].nunique() and not any("coreg/tumor_mask" in p for p in masks)
    assert inputs("extract_radiomics", "results/demo/radiomics/original/features.tsv")[-len(feature_masks):] == feature_masks
    for path in feature_masks:
        fold, subject = re.fullmatch(r"results/demo/segment/fold(\d+)/masks/(\w+)\.nii\.gz", path).groups()
        assert roles[(int(fold), subject)] in ("test", "external") and (subject in set(internal) or fold == "0"), path
    for fold in range(3):  # each fold's segmenter gives the features of exactly the patients it tests
        tested = sorted(splits.loc[(splits["fold"] == fold) & (splits["role"] == "test"), "subject"])
        assert sorted(re.findall(rf"segment/fold{fold}/masks/(\w+)\.nii\.gz", " ".join(feature_masks))) == (
            sorted([*tested, *splits.loc[splits["role"] == "external", "subject"].unique()]) if fold == 0 else tested)
    subject = splits.loc[(splits["fold"] == 2) & (splits["role"] == "test"), "subject"].iloc[0]
    assert inputs("interpolate_image", f"results/demo/subjects/{subject}/interp/t1ce.nii.gz") == [
        f"results/demo/subjects/{subject}/coreg/t1ce.nii.gz", f"results/demo/segment/fold2/masks/{subject}.nii.gz"]


def test_feature_mask_where_missing_gives_features_to_patients_without_a_manual_mask(tiny_cohort: Path,
                                                                                     tmp_path: Path) -> None:
    """A subject without a manual mask: the baseline is dropped and radiomics refused with manual
    feature masks; predicted_where_missing computes its features in its cross-fitted mask, the
    others' in their manual ones, and the methods count it."""
    from oncoflow.config import ConfigError

    sheet = pd.read_csv(tiny_cohort, sep="\t", dtype=str, keep_default_na=False)
    for column in ("dicom", "tumor_mask"):  # the copy lives elsewhere: absolute paths
        sheet[column] = [str(tiny_cohort.parent / p) for p in sheet[column]]
    blank = sheet["subject"].iloc[4]
    sheet.loc[4, "tumor_mask"] = ""
    path = tmp_path / "one_mask_missing.tsv"
    sheet.to_csv(path, sep="\t", index=False)
    radiomics = {"activate": True, "modality": "t1ce", "variants": ["original"]}

    def plan(**segment: object):
        from oncoflow.plan import StudyPlan

        config = tiny_config()
        config["cohort"]["samples"] = str(path)
        config["segment"] = dict(segment)
        config["radiomics"] = radiomics
        return StudyPlan.from_config(resolved(config))

    with pytest.raises(ConfigError, match=rf"subject '{blank}' has no tumor mask"):
        plan(crop_mask="predicted_where_missing")
    radiomics["activate"] = False
    assert plan(crop_mask="predicted_where_missing").baseline_models == []
    radiomics["activate"] = True
    where_missing = plan(crop_mask="predicted_where_missing", feature_mask="predicted_where_missing")
    assert where_missing.baseline_models == ["baseline"] and where_missing.predicted_feature_subjects == [blank]
    fold = where_missing.prediction_folds[blank]
    assert where_missing.feature_tumor_mask(blank) == f"results/demo/segment/fold{fold}/masks/{blank}.nii.gz"
    assert blank not in where_missing.segmenter_subjects(fold)
    other = sheet["subject"].iloc[0]
    assert where_missing.feature_tumor_mask(other) == f"results/demo/subjects/{other}/coreg/tumor_mask.nii.gz"
    assert where_missing.radiomics_tumor_mask(other, "interp") == f"results/demo/subjects/{other}/interp/tumor_mask.nii.gz"
    assert where_missing.report_facts.predicted_feature_subjects == (blank,)
    assert plan(feature_mask="predicted").segment.active  # the features alone switch the segmenters on


def test_features_follow_the_predicted_mask(finished_run: Path, fold0_segmenter: dict) -> None:
    """extract_baseline_features' function on a fold-0 test patient's predicted mask (made by the
    rule's function) gives that mask's volume and intensities, not the manual mask's."""
    from oncoflow.baseline.features import cohort_features

    subject = fold0_segmenter["tested"][0]
    images, brain, manual = subject_paths(finished_run, subject)
    out = fold0_segmenter["out"]
    row = segment_subject(subject, 0, images, brain, manual, fold0_segmenter["checkpoint"], fold0_segmenter["splits"],
                          out / f"{subject}.nii.gz", out / f"{subject}.tsv")
    results = finished_run / "results" / "demo"
    by_manual = cohort_features([subject], MODALITIES, results, [manual]).iloc[0]
    by_predicted = cohort_features([subject], MODALITIES, results, [out / f"{subject}.nii.gz"]).iloc[0]
    assert by_predicted["log_volume_ml"] == pytest.approx(np.log(row["predicted_ml"]), abs=1e-6)
    assert by_manual["log_volume_ml"] == pytest.approx(np.log(row["manual_ml"]), abs=1e-6)
    assert row["predicted_ml"] != pytest.approx(row["manual_ml"], rel=1e-3)  # so the check can fail
    assert by_predicted["flair_mean"] != pytest.approx(by_manual["flair_mean"], rel=1e-6)
    print(f"{subject}: Dice {row['dice']:.3f}; log volume manual {by_manual['log_volume_ml']:.3f}, predicted "
          f"{by_predicted['log_volume_ml']:.3f}; flair mean z {by_manual['flair_mean']:.3f} vs {by_predicted['flair_mean']:.3f}")


def fold_segmenter(checkpoint: Path, out: Path, fold: int, threshold: float) -> Path:
    """The fold-0 segmenter saved as fold ``fold``'s with another threshold: a different mask per
    fold at no training cost, so a fold's model scoring another fold's crop would show."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["fold"], state["config"] = fold, {**state["config"], "threshold": threshold}
    torch.save(state, out)
    return out


def check_predict_plans_segmentation(run: Path, config: dict, bundle: Path, tmp_path: Path) -> None:
    """A predict run (dry) on 2 exams of the study without a tumor_mask column: each segmented
    once (no crop_tumor job), its QC montage drawing fold 0's predicted outline; with whole-brain
    crops the same exams are cropped without any mask."""
    import json

    from oncoflow.plan import StudyPlan

    rows = pd.read_csv(run / "data/demo/samples.tsv", sep="\t", dtype=str).iloc[:2]
    rows = rows.assign(dicom=[str(run / "data/demo" / d) for d in rows["dicom"]]).drop(
        columns=["tumor_mask", "tumor_mask_space"])
    rows.to_csv(tmp_path / "nomask.tsv", sep="\t", index=False)
    predict = {**config, "predict": {"bundle": str(bundle), "samples": str(tmp_path / "nomask.tsv"), "name": "nomask",
                                     "keep_going": False}}
    (tmp_path / "predict.json").write_text(json.dumps(predict))
    try:
        dry = run_snakemake(run, "-n", "--cores", "1", "--configfile", str(tmp_path / "predict.json"))
    finally:
        shutil.rmtree(run / "results/demo/predict/nomask", ignore_errors=True)
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = planned_jobs(dry.stdout)
    assert jobs.get("segment_new_subject") == 2 and jobs.get("predict_new_subjects") == 1, jobs
    assert "crop_tumor" not in jobs and "crop_brain" not in jobs, jobs
    subject = rows["subject"].iloc[0]
    assert f"predict/nomask/subjects/{subject}/predicted_mask/fold0.nii.gz" in dry.stdout
    predict["crop"] = {**predict["crop"], "region": "brain"}
    plan = StudyPlan.from_config(predict)
    assert plan.crop_subjects == rows["subject"].tolist() and set(plan.crop_subjects) <= set(plan.maskless_subjects)
    assert plan.predicted_mask_subjects == []


def test_bundle_carries_the_segmenters_and_predict_scores_subjects_without_a_mask(
        finished_run: Path, fold0_segmenter: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """crop_mask predicted: the bundle packs each fold's segmenter (nothing to download); a new
    subject without a mask is segmented by every fold's segmenter (masks on the reference grid)
    and fold k's model scores the crop from fold k's mask; a blank exam's empty mask is not scored."""
    import socket

    from oncoflow.plan import StudyPlan
    from oncoflow.predict.apply import cnn_fold_probabilities, predict_subjects
    from oncoflow.predict.manifest import load_manifest, preparation
    from oncoflow.predict.run import unpack_bundle
    from oncoflow.predict.bundle import build_bundle
    from oncoflow.segment.new_subjects import segment_new_subject

    start = time.perf_counter()
    config = tiny_config()
    config["segment"] = {"crop_mask": "predicted"}
    config = resolved(config)
    monkeypatch.chdir(finished_run)
    plan = StudyPlan.from_config(config)
    assert plan.bundled_segmenter_folds == [0, 1, 2]
    segmenters = {0: fold0_segmenter["checkpoint"],
                  **{k: fold_segmenter(fold0_segmenter["checkpoint"], tmp_path / f"seg{k}.pt", k, t)
                     for k, t in ((1, 0.05), (2, 0.2))}}
    b = plan.bundle_params
    build_bundle(tmp_path / "demo.tar.gz", results=Path(b["results"]), config=config, cnn=b["cnn"], fused=b["fused"],
                 fusion_methods=b["fusion_methods"], baseline=b["baseline"], folds=b["folds"],
                 reports={k: Path(v) for k, v in b["reports"].items() if Path(v).is_file()},
                 left_out=b["left_out"], radiomics=b["radiomics"], segmenters=segmenters)
    bundle = unpack_bundle(tmp_path / "demo.tar.gz", tmp_path / "unpacked")
    manifest = load_manifest(bundle)
    record = manifest["segmenters"]
    assert record["folds"] == [0, 1, 2] and record["settings"]["1"]["threshold"] == 0.05
    assert record["settings"]["0"]["architecture"] == "unet" and record["plausibility"]["min_predicted_ml"] == 0.1
    assert all((bundle / f"segmenters/fold{k}.pt").is_file() for k in range(3))
    check_predict_plans_segmentation(finished_run, config, bundle, tmp_path)

    # two new subjects without a mask: a fold-0 test patient's exam, and the same exam blanked
    subject = fold0_segmenter["tested"][0]
    images, brain_mask, _ = subject_paths(finished_run, subject)
    blank = tmp_path / "blank"
    blank.mkdir()
    blank_images = {}
    for m, path in images.items():
        img = nib.load(path)
        blank_images[m] = blank / f"{m}.nii.gz"
        nib.save(nib.Nifti1Image(np.zeros(img.shape, np.float32), img.affine), blank_images[m])

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a segmenter tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    bundled = {k: bundle / f"segmenters/fold{k}.pt" for k in range(3)}
    tables = {}
    for name, imgs in ((subject, images), ("blank01", blank_images)):
        out = tmp_path / name
        tables[name] = out / "predicted_mask.tsv"
        table = segment_new_subject(name, imgs, brain_mask, bundled, record["plausibility"], plan.crop_params,
                                    {k: out / f"fold{k}.nii.gz" for k in range(3)}, out / "crops", tables[name])
        print(table.drop(columns=["mask", "crop"]).to_string(index=False))
    normal = pd.read_csv(tables[subject], sep="\t")
    assert normal["plausible"].tolist() == [1, 1, 1] and normal["predicted_ml"].nunique() == 3
    predicted = nib.load(tmp_path / subject / "fold0.nii.gz")
    brain = nib.load(brain_mask)
    assert predicted.shape == brain.shape and np.allclose(predicted.affine, brain.affine)
    empty = pd.read_csv(tables["blank01"], sep="\t", keep_default_na=False)
    assert empty["plausible"].tolist() == [0, 0, 0] and not list((tmp_path / "blank01" / "crops").iterdir())

    samples = pd.DataFrame({"subject": [subject, "blank01"], "cohort": "site_b", "y": np.nan,
                            "tumor_mask": ""}).set_index("subject", drop=False)
    qc = pd.DataFrame({"subject": [subject, "blank01"], "flag": ""})
    given = preparation(config)
    table, per_fold = predict_subjects(bundle, {}, samples, qc, None, given, predicted_masks=tables)
    rows = table.set_index(["subject", "model"])
    for model in plan.models:
        assert rows.loc[(subject, model), "status"] == "scored", rows.loc[(subject, model)]
        assert rows.loc[(subject, model), "tumor_mask"] == "predicted"
        assert rows.loc[("blank01", model), "status"].startswith("not scored: predicted tumor mask empty/implausible "
                                                                 "(fold 0: ")
    assert rows.loc[(subject, "fusion_mean"), "status"] == "scored"
    assert "baseline" in manifest["models"] and rows.loc[(subject, "baseline"), "status"].startswith(
        "not scored: baseline reads features of a manual tumor mask")
    # fold k's model scored fold k's crop (and another fold's crop would have scored differently)
    model = next(iter(plan.models))
    crops = {k: tmp_path / subject / "crops" / f"fold{k}.npz" for k in range(3)}
    assert np.load(crops[1])["image_t1ce"].shape != np.load(crops[0])["image_t1ce"].shape  # so the check can fail
    mine = per_fold[(per_fold["model"] == model) & (per_fold["subject"] == subject)].set_index("fold")["probability"]
    scored = {k: cnn_fold_probabilities(bundle, manifest, {subject: crops[k]}, given).set_index(["model", "fold"])
              for k in range(3)}  # every fold model on crop k
    for k in range(3):
        assert mine[k] == pytest.approx(scored[k].at[(model, k), "probability"], abs=1e-9)
    assert mine[0] != pytest.approx(scored[1].at[(model, 0), "probability"], abs=1e-6)
    assert mine[1] != pytest.approx(scored[0].at[(model, 1), "probability"], abs=1e-6)
    print(f"bundle + segment 2 new subjects + predict: {time.perf_counter() - start:.1f} s")
