"""The shipped study configs (config/studies/): each validates and passes the semantic checks; each
runnable one runs end to end (slow) on a tiny synthetic cohort of its own shape (oncoflow demo
--study), with the config's sizes shrunk in a copy (never its models or steps)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate
from workflow_helpers import REPO, planned_jobs, run_snakemake

from oncoflow.config import check_config, expand_models
from oncoflow.demo import STUDY_SHAPES, make_demo_cohort

STUDIES = REPO / "config" / "studies"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CORES = os.environ.get("ONCOFLOW_TEST_CORES", "2")


def study_config(name: str) -> dict[str, Any]:
    return yaml.safe_load((STUDIES / f"{name}.yaml").read_text())


def test_every_study_has_a_config_a_sheet_template_a_docs_page_and_a_demo_shape() -> None:
    names = sorted(p.stem for p in STUDIES.glob("*.yaml"))
    assert set(STUDY_SHAPES) <= set(names)  # plus lgg_radiomics (the radiomics branch on the real LGG cohort)
    for name in STUDY_SHAPES:
        assert (STUDIES / f"{name}.samples.tsv").is_file(), name
        assert (REPO / "docs" / "studies" / f"{name}.md").is_file(), name


@pytest.mark.parametrize("name", sorted(STUDY_SHAPES))
def test_study_config_validates(name: str) -> None:
    config = study_config(name)
    validate(config, str(SCHEMA), set_default=True)
    check_config(config)
    shape = STUDY_SHAPES[name]
    assert config["study"]["name"] == name and config["study"]["label"] == shape.label
    assert sorted(config["ingest"]["modalities"]) == sorted(shape.modalities)
    # the sheet template names the columns the config reads
    template = pd.read_csv(STUDIES / f"{name}.samples.tsv", sep="\t", dtype=str)
    assert {"subject", "cohort", "tumor_mask", "tumor_mask_space", shape.label} <= set(template.columns)
    assert set(template["tumor_mask_space"]) <= set(shape.modalities)


def tiny_weights(folder: Path, architecture: str) -> Path:
    """Random-weight state dicts in the published layouts: torchvision's ImageNet files (googlenet
    with its aux heads) and MedicalNet's (``state_dict`` with DataParallel's ``module.`` prefix)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{architecture}.pth"
    if architecture.endswith("_3d"):
        from oncoflow.models.zoo import build_model

        state = {"state_dict": {f"module.{k}": v for k, v in build_model(architecture, 1).state_dict().items()
                                if not k.startswith("fc.")}}
    else:
        import torchvision.models as tvm

        kwargs = {"aux_logits": True, "init_weights": True} if architecture == "googlenet" else {}
        state = getattr(tvm, architecture)(weights=None, **kwargs).state_dict()
    torch.save(state, path)
    return path


def shrink(config: dict[str, Any], sheet: Path, weights: Path, *, write_weights: bool = True) -> dict[str, Any]:
    """The same models and steps at test size: 2 folds, 1 epoch, small crops, few iterations;
    pretrained weights replaced by random ones in the same format (empty files without
    ``write_weights``: a dry run only checks that they are there)."""
    config = copy.deepcopy(config)
    config["cohort"]["samples"] = str(sheet)
    config["preprocess"]["n4"].update(shrink_factor=4, iterations=[10])
    brain = config["preprocess"].setdefault("brain_extraction", {})
    if brain.get("backend", "hdbet") != "none":  # deepbet alone: 5 s a head instead of ~30 s
        brain.update(backend="deepbet", second_opinion="none")
    if config["preprocess"]["registration"].get("transform", "Rigid") != "none":
        config["preprocess"]["registration"]["iterations"] = [20]
    alexnet = any(m["architecture"] == "alexnet" for m in config.get("models", []))
    config["crop"].update(size=64 if alexnet else 32, margin_mm=min(config["crop"].get("margin_mm", 10), 10),
                          slices=2, depth=8)
    for entry in [*config.get("models", []), *config.get("pretrain", [])]:
        entry.update(epochs=1, batch_size=16)
        if "patience" in entry:
            entry["patience"] = 0
        if entry.get("weights"):
            arch = entry.get("architecture") or _pretrain_arch(config, entry)
            entry["weights"] = str(tiny_weights(weights, arch) if write_weights else placeholder(weights / f"{arch}.pth"))
    if config.get("superres"):
        config["superres"].update(epochs=2, steps_per_epoch=3, max_train_subjects=4, patch_size=24)
    if config.get("radiomics"):
        config["radiomics"]["selection"]["inner_folds"] = 2
    if config.get("train"):  # nested selection is 4 trainings per fold (tests/test_selection.py covers it)
        config["train"]["selection"] = "inner_val"
    config["cv"].update(folds=2, val_fraction=0.34)
    config["evaluate"].update(n_boot=100)
    # Grad-CAM proves the map rule in each study's shape; occlusion (tens of seconds a 3D patient,
    # twice with the randomisation check) is covered by tests/test_explain.py
    config.setdefault("explain", {})["methods"] = ["gradcam"]
    return config


def placeholder(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def _pretrain_arch(config: dict[str, Any], job: dict[str, Any]) -> str:
    return next(m["architecture"] for m in config["models"] if m.get("pretrained") == job["name"])


# study -> (subjects, share of positives): 2 folds with a stratified inner split need >= 2 of each
# class per training fold, so 8 cross-validated subjects at 1/2 (82/18 would need 22; each
# architecture's class weighting runs at any share); h3k27m adds its 2 external subjects.
E2E = {
    "idh1_tl_cnn2d": (8, None),
    "h3k27m_wholebrain_cotrain": (10, 0.5),
    "recurrence_vs_necrosis_3d": (8, 0.5),
}
# Studies whose end-to-end run makes no explanation maps: every architecture's Grad-CAM layer is
# tests/test_explain.py's unit test, the map rule's 2D path the finished run's; the 3D and the
# co-training studies still run the rule here.
E2E_NO_MAPS = {"idh1_tl_cnn2d"}
# The one cut in a list of models: idh1_tl_cnn2d trains 24 CNNs (4 architectures x 6 inputs), 48
# jobs at 2 folds, too long for CI. Its end-to-end run keeps every architecture (each loads its
# published weight layout and adapts its first conv to a 2-channel input, the same code path as
# for 1 channel), single-channel inputs on the fused architecture, every fusion and every
# comparison of the config: 6 models, 12 training jobs. The dry run below plans all 24.
E2E_INPUTS = {"idh1_tl_cnn2d": {"vgg16": ["flair", "t1ce", "flair+t1ce"], "alexnet": ["flair+t1ce"],
                                "googlenet": ["flair+t1ce"], "resnet18": ["flair+t1ce"]}}


def tiny_cohort_for(name: str, workdir: Path, n: int, positives: float | None = None, voxel_scale: float = 2.0) -> Path:
    shape = STUDY_SHAPES[name]
    if positives is not None:
        shape = replace(shape, positive_fraction=positives)
    return make_demo_cohort(workdir / "data", n, seed=5, voxel_scale=voxel_scale,
                            external_fraction=shape.external_fraction, shape=shape)


def cut_inputs(config: dict[str, Any], inputs: dict[str, list[str]]) -> dict[str, Any]:
    """Each models[] entry on its architecture's ``inputs`` only; fusion keeps the models that remain."""
    for entry in config["models"]:
        entry["inputs"] = [x for x in entry["inputs"] if x in inputs[entry["architecture"]]]
    kept = expand_models(config)
    config["fusion"]["models"] = [m for m in config["fusion"].get("models", []) if m in kept]
    return config


@pytest.mark.parametrize("name", sorted(STUDY_SHAPES))
def test_study_dry_run_plans_every_model_and_fold(name: str, tmp_path: Path) -> None:
    config = study_config(name)
    n = 12 if STUDY_SHAPES[name].external_fraction else 8
    sheet = tiny_cohort_for(name, tmp_path, n, positives=0.5, voxel_scale=4.0)  # only the sheet is read
    config = shrink(config, sheet, tmp_path / "weights", write_weights=False)
    if name == "lgg_radiogenomics":  # the demo is DICOM of a whole head, masks on t1ce
        config["preprocess"]["reference"] = "t1ce"
    configfile = tmp_path / f"{name}.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_snakemake(tmp_path, "-n", "--cores", "1", "--configfile", str(configfile))
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    n_models, folds = len(expand_models(config)), config["cv"]["folds"] * config["cv"].get("repeats", 1)
    assert jobs.get("train_model", 0) == n_models * folds
    assert jobs.get("fit_baseline_model", 0) == folds  # every study here has tumor masks
    assert jobs.get("fuse_predictions", 0) == len(config["fusion"]["methods"]) * folds
    assert jobs["write_methods"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(E2E))
def test_study_runs_end_to_end(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    n, positives = E2E[name]
    workdir = tmp_path_factory.mktemp(name)
    try:
        sheet = tiny_cohort_for(name, workdir, n, positives)
        config = study_config(name)
        if name in E2E_INPUTS:
            config = cut_inputs(config, E2E_INPUTS[name])
        config = shrink(config, sheet, workdir / "weights")
        if name in E2E_NO_MAPS:
            config["explain"]["activate"] = False
        # the brain extraction step by the head mask (backend none): deepbet (9 CPU s a head) runs
        # in the finished run, HD-BET in tests/test_preprocess*.py; no study's shape changes them
        config["preprocess"]["brain_extraction"]["backend"] = "none"
        configfile = workdir / f"{name}.yaml"
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
        start = time.time()
        result = run_snakemake(workdir, "--cores", CORES, "--configfile", str(configfile), timeout=1800)
        print(f"{name}: end to end in {time.time() - start:.0f} s")
        assert result.returncode == 0, result.stderr[-5000:]
        results = workdir / "results" / name
        metrics = pd.read_csv(results / "tables/metrics.tsv", sep="\t")
        fused = [f"fusion_{m}" for m in config["fusion"]["methods"]]
        assert set(metrics["model"]) == {*expand_models(config), *fused, "baseline"}
        comparisons = pd.read_csv(results / "tables/comparisons.tsv", sep="\t")
        family = {tuple(p) for p in config["evaluate"]["comparisons"]} | {(m, "baseline") for m in metrics["model"]
                                                                          if m != "baseline"}
        assert set(zip(comparisons["model_a"], comparisons["model_b"])) == family
        cohorts = {"cv", "external"} if STUDY_SHAPES[name].external_fraction else {"cv"}
        assert set(metrics["cohort"]) == cohorts
        methods = (results / "methods.md").read_text()
        assert all(model in methods for model in expand_models(config))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # checkpoints of 24 2D models: several GB


@pytest.mark.slow
def test_hcc_study_runs_end_to_end(tmp_path: Path) -> None:
    # 12: 3 of each class in each training fold (at 10, combined_original's inner split of a fold's
    # training patients left 1 of a class: too few for the LASSO's inner 2-fold CV)
    sheet = tiny_cohort_for("hcc_tace_radiomics_sr", tmp_path, 12, positives=0.5)
    config = shrink(study_config("hcc_tace_radiomics_sr"), sheet, tmp_path / "weights")
    configfile = tmp_path / "hcc_tace_radiomics_sr.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_snakemake(tmp_path, "--cores", CORES, "--configfile", str(configfile), timeout=1800)
    assert result.returncode == 0, result.stderr[-5000:]
    results = tmp_path / "results/hcc_tace_radiomics_sr"
    assert (results / "methods.md").is_file()
    metrics = pd.read_csv(results / "tables/metrics.tsv", sep="\t")
    assert {"radiomics_original", "radiomics_interp", "radiomics_sr", "clinical"} <= set(metrics["model"])
    # The interpolation control: the GAN's grid and mask, the image by B-spline, recorded as such.
    import json

    import nibabel as nib

    subject = pd.read_csv(sheet, sep="\t")["subject"].iloc[0]
    sr = nib.load(results / f"subjects/{subject}/superres/arterial.nii.gz")
    interp = nib.load(results / f"subjects/{subject}/interp/arterial.nii.gz")
    assert interp.shape == sr.shape and np.allclose(interp.affine, sr.affine)
    masks = [np.asarray(nib.load(results / f"subjects/{subject}/{v}/tumor_mask.nii.gz").dataobj)
             for v in ("interp", "superres")]
    assert np.array_equal(*masks)
    assert not np.allclose(np.asarray(interp.dataobj), np.asarray(sr.dataobj))  # the GAN did something else
    original = nib.load(results / f"subjects/{subject}/coreg/arterial.nii.gz")  # x2 along z: 2n - 1 slices
    assert sr.shape[2] == 2 * original.shape[2] - 1
    assert sr.header.get_zooms()[2] == pytest.approx(original.header.get_zooms()[2] / 2, rel=1e-4)
    quality = pd.read_csv(results / "superres/quality.tsv", sep="\t")  # held-out subjects, GAN vs interpolation
    held = pd.read_csv(results / "superres/subjects.tsv", sep="\t")
    assert set(quality["method"]) == {"gan", "linear", "bspline"}
    assert set(quality["subject"]) == set(held.loc[held["role"] == "heldout", "subject"]) != set()
    settings = {v: json.loads((results / f"radiomics/{v}/settings.json").read_text()) for v in ("interp", "sr")}
    assert settings["interp"]["interpolation"]["method"] == "bspline" and "superres" in settings["sr"]
    assert settings["interp"]["discretisation"] == "fixed_bin_number" and settings["interp"]["bin_number"] == 32
    methods = (results / "methods.md").read_text()
    assert "cubic B-spline interpolation" in methods and "nearest neighbour" in methods
    assert "never read a label" in methods and "fixed number of 32 bins" in methods
    predict_new_hcc_subjects(tmp_path, configfile, results, metrics)


def predict_new_hcc_subjects(workdir: Path, configfile: Path, results: Path, metrics: pd.DataFrame) -> None:
    """After the paper (#17): the trained study's bundle applied to 4 new labelled subjects (a new
    seed, one clinical value blank) in an empty folder: every model incl. radiomics_*, clinical and
    combined_* scored, from the bundled generator and fold models, with nothing fitted or trained;
    the new cohort's metrics rows; features extracted differently refused, naming the setting."""
    import subprocess
    import sys

    start = time.perf_counter()
    made = run_snakemake(workdir, "bundle", "--cores", CORES, "--configfile", str(configfile))
    assert made.returncode == 0, made.stderr[-4000:]
    tar = results / "bundle" / "hcc_tace_radiomics_sr.tar.gz"
    bundle_s = time.perf_counter() - start
    shape = replace(STUDY_SHAPES["hcc_tace_radiomics_sr"], positive_fraction=0.5)
    sheet = make_demo_cohort(workdir / "site_b", 4, seed=6, voxel_scale=2.0, shape=shape)
    rows = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
    rows["cohort"] = "site_b"
    blank = rows["subject"].iloc[0]
    rows.loc[0, "tumor_diameter"] = ""  # imputed with each fold's training median
    rows.to_csv(sheet, sep="\t", index=False)
    user = workdir / "elsewhere"
    user.mkdir()

    def predict(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "oncoflow.cli", "predict", str(tar), str(sheet), *args], cwd=user,
                              capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)

    start, before = time.perf_counter(), os.times()
    done = predict("--cores", CORES)
    after = os.times()
    predict_s = time.perf_counter() - start
    cpu_s = after.children_user + after.children_system - before.children_user - before.children_system
    assert done.returncode == 0, done.stderr[-5000:]
    out = user / "results" / "hcc_tace_radiomics_sr" / "predict" / "site_b"
    preds = pd.read_csv(out / "predictions.tsv", sep="\t", dtype={"subject": str})
    assert set(preds["model"]) == set(metrics["model"])  # every model the study evaluated, radiomics incl.
    assert not preds["status"].str.startswith("not applied").any()
    qc = pd.read_csv(out / "qc" / "qc.tsv", sep="\t", dtype={"subject": str}, keep_default_na=False)
    flagged = set(qc.loc[qc["flag"] != "", "subject"])
    scored = preds[preds["status"] == "scored"]
    assert set(scored["subject"]) == set(rows["subject"]) - flagged
    assert scored["probability"].between(0, 1).all() and (scored["folds"] == 2).all()
    if blank not in flagged:
        assert {"clinical", "combined_sr"} <= set(scored.loc[scored["subject"] == blank, "model"])
    benchmarked = {p.name for p in (out / "benchmarks").iterdir()}
    assert not benchmarked & {"fit_radiomics_model", "train_superres", "fit_baseline_model", "split_folds",
                              "evaluate_superres", "evaluate_models"}, benchmarked
    assert {"extract_radiomics", "apply_superres", "interpolate_image", "predict_new_subjects"} <= benchmarked
    assert not (out / "models").exists() and not (out / "superres").exists()
    new = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert set(new["model"]) == set(metrics["model"]) and set(new["cohort"]) == {"site_b"} and (new["n"] == 4).all()
    print(f"\nhcc bundle {bundle_s:.0f} s ({tar.stat().st_size / 1e6:.1f} MB); predict 4 subjects {predict_s:.0f} s "
          f"wall, {cpu_s:.0f} CPU-s; QC flagged {sorted(flagged)}")
    print(new[["model", "n_scored", "auc", "cv_auc"]].to_string(index=False))
    # features extracted differently: refused before anything runs, naming the setting
    refused = predict("--name", "coarser", "--set", "radiomics.settings.bin_number=16")
    assert refused.returncode == 2
    assert "radiomics.settings.bin_number: trained on 32, this input 16" in refused.stderr, refused.stderr[-3000:]


def test_lgg_commented_arms_switch_on_by_uncommenting() -> None:
    """The LGG config's ImageNet, glioblastoma-pretraining and HD-BET-transfer blocks are commented
    YAML that validates once uncommented: the paper's three arms plus ours, with distinct model names."""
    text = (STUDIES / "lgg_radiogenomics.yaml").read_text()
    switched = re.sub(r"^( +)# (- |  )", r"\1\2", text, flags=re.MULTILINE)
    config = yaml.safe_load(switched)
    validate(config, str(SCHEMA), set_default=True)
    check_config(config)
    assert sorted(expand_models(config)) == sorted(
        ["t1_resnet18", "flair_resnet18", "t1ce_resnet18", "flair+t1+t1ce_resnet18",
         "flair+t1+t1ce_resnet18_imagenet", "flair+t1+t1ce_resnet18_foldseg", "flair+t1+t1ce_resnet18_gbm",
         "flair+t1+t1ce_hdbet_encoder_3d_hdbet"])
    sources = {job["name"]: job["source"] for job in config["pretrain"]}
    assert sources == {"tumorseg": "folds", "gbmseg": "cohort"}
    shipped = yaml.safe_load(text)  # as shipped: scratch and fold pretraining only
    assert sorted(expand_models(shipped)) == sorted(
        ["t1_resnet18", "flair_resnet18", "t1ce_resnet18", "flair+t1+t1ce_resnet18", "flair+t1+t1ce_resnet18_foldseg"])
