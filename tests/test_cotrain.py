"""Co-training classification with tumor segmentation (models[].cotrain_segmentation): the
segmentation head leaves the classifier's forward and outputs unchanged, gets the same flips as the
image, and training lowers both losses on small synthetic crops (2D and 3D, CPU, one thread)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers_models import tiny_input
from helpers_train import synthetic_cohort
from oncoflow.models.segmentation import CoTrainNet, dice_bce_loss, soft_dice
from oncoflow.models.zoo import ARCHITECTURES, SEGMENTATION, build_model
from oncoflow.train.folds import make_folds
from oncoflow.train.loop import TrainConfig, augment_batch, train_fold

torch.set_num_threads(1)

HISTORY_COLUMNS = ["epoch", "train_loss", "val_auc", "seconds", "data_wait_share", "samples_per_s"]
PRED_COLUMNS = ["subject", "fold", "model", "role", "y_true", "probability"]


@pytest.mark.parametrize("architecture", SEGMENTATION)
def test_classifier_forward_unchanged(architecture):
    """Same weights: the co-training model's logit is the plain classifier's, bit for bit; its
    state dict is the classifier's plus seg_head.*; the mask logits have the input's size."""
    torch.manual_seed(0)
    plain = build_model(architecture, 2)
    cotrain = build_model(architecture, 2, segmentation=True)
    assert isinstance(cotrain, CoTrainNet)
    state = cotrain.state_dict()
    assert {k for k in state if not k.startswith("seg_head.")} == set(plain.state_dict())
    assert any(k.startswith("seg_head.") for k in state)
    plain.load_state_dict({k: v for k, v in state.items() if not k.startswith("seg_head.")})
    x = tiny_input(architecture)
    plain.eval()
    cotrain.eval()
    with torch.no_grad():
        expected = plain(x)
        logit = cotrain(x)
        logit2, seg = cotrain.forward_with_segmentation(x)
    assert logit.shape == expected.shape == (2, 1)
    assert torch.equal(logit, expected) and torch.equal(logit2, expected)
    assert seg.shape == (2, 1, *x.shape[2:])


def test_only_resnets_have_a_segmentation_head():
    for architecture in sorted(set(ARCHITECTURES) - set(SEGMENTATION)):
        with pytest.raises(ValueError, match="no segmentation head"):
            build_model(architecture, 1, segmentation=True)


@pytest.mark.parametrize("architecture", ["resnet18", "resnet10_3d"])
def test_checkpoints_cross_between_cotrained_and_plain(tmp_path, architecture):
    """A co-trained checkpoint loads into the plain classifier (its head is dropped) with the same
    logits, and a plain one into a co-training model (fresh segmentation head)."""
    torch.manual_seed(3)
    cotrain = build_model(architecture, 1, segmentation=True)
    torch.save({"model": cotrain.state_dict()}, tmp_path / "cotrained.pt")
    plain = build_model(architecture, 1, init="checkpoint", weights=tmp_path / "cotrained.pt")
    torch.save({"model": plain.state_dict()}, tmp_path / "plain.pt")
    again = build_model(architecture, 1, init="checkpoint", weights=tmp_path / "plain.pt", segmentation=True)
    x = tiny_input(architecture, 1)
    for m in (cotrain, plain, again):
        m.eval()
    with torch.no_grad():
        assert torch.equal(plain(x), cotrain(x)) and torch.equal(again(x), cotrain(x))


def test_mask_gets_the_image_flips():
    """Image = mask + 5, so after augmentation image / scale - 5 must equal the mask, per sample;
    and the image's augmentation is the same with or without a mask (same random draws)."""
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(16, 1, 8, 8, generator=g) > 0.5).to(torch.uint8)
    x = mask.float() + 5
    xa, ma = augment_batch(x, torch.Generator().manual_seed(1), mask)
    alone, none = augment_batch(x, torch.Generator().manual_seed(1))
    assert none is None and torch.equal(alone, xa)
    scale = xa.amax(dim=(1, 2, 3), keepdim=True) / 6  # a mask of all zeros in a sample is unlikely
    torch.testing.assert_close(xa / scale - 5, ma.float(), atol=1e-5, rtol=0)
    assert not torch.equal(ma, mask)  # some sample was flipped


def test_dice_bce_loss():
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 2:6, 2:6] = 1
    good = (target * 2 - 1) * 20
    bad = -good
    loss_good, dice_good = dice_bce_loss(good, target)
    loss_bad, dice_bad = dice_bce_loss(bad, target)
    assert dice_good > 0.99 and dice_bad < 0.05 and loss_good < 0.02 < 1 < loss_bad
    empty = torch.zeros(1, 1, 8, 8)
    assert soft_dice(torch.full((1, 1, 8, 8), -20.0), empty).item() == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------- train_fold


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cotrain")
    sheet, crops = synthetic_cohort(root / "crops", [0, 1] * 10, seed=2, size=32, depth=6)
    splits = make_folds(sheet, label="label", folds=2, seed=0, val_fraction=0.3)
    return root, crops, splits


@pytest.mark.parametrize("architecture,epochs", [("resnet18", 8), ("resnet10_3d", 5)])
def test_cotraining_lowers_both_losses(cohort, architecture, epochs):
    root, crops, splits = cohort
    common = dict(architecture=architecture, modalities=["t1c"], epochs=epochs, batch_size=8, slices=3,
                  depth=8, patience=0, seed=0, device="cpu")
    out = root / architecture
    preds = train_fold(TrainConfig(**common, cotrain_segmentation=True, seg_weight=0.5), crops, splits,
                       out_dir=out, model_name="m", fold=0)
    history = pd.read_csv(out / "history.tsv", sep="\t")
    # the usual columns first (unchanged), then the two losses and the training Dice
    assert list(history.columns) == HISTORY_COLUMNS + ["cls_loss", "seg_loss", "seg_dice"]
    first, last = history.iloc[0], history.iloc[-1]
    print(f"\n{architecture}: classification loss {first.cls_loss:.3f} -> {last.cls_loss:.3f}, "
          f"segmentation loss {first.seg_loss:.3f} -> {last.seg_loss:.3f}, "
          f"Dice {first.seg_dice:.3f} -> {last.seg_dice:.3f}")
    assert last.cls_loss < 0.5 * first.cls_loss
    assert last.seg_loss < 0.85 * first.seg_loss
    np.testing.assert_allclose(history["train_loss"], history["cls_loss"] + 0.5 * history["seg_loss"],
                               rtol=1e-4)
    # predictions: same table as a plain model's, from the classification logit alone
    assert list(preds.columns) == PRED_COLUMNS
    fold = splits[splits["fold"] == 0]
    assert sorted(preds["subject"]) == sorted(fold["subject"])
    assert preds["probability"].between(0, 1).all()
    on_disk = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert list(on_disk.columns) == PRED_COLUMNS
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["cotrain_segmentation"] is True
    assert any(k.startswith("seg_head.") for k in ckpt["model"])
