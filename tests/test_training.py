"""oncoflow.train.loop.train_fold on small synthetic crops (CPU, one thread): it learns a separable
signal, writes its history / predictions / checkpoint, is deterministic, and runs every
class-imbalance mode."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch

from helpers_train import synthetic_cohort
from oncoflow.metrics import auc
from oncoflow.models.zoo import build_model
from oncoflow.train.data import build_samples
from oncoflow.train.folds import make_folds
from oncoflow.train.loop import TrainConfig, predict_patients, seed_everything, train_fold

torch.set_num_threads(1)

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_auc", "selected", "seconds", "data_wait_share",
                   "samples_per_s"]
PRED_COLUMNS = ["subject", "fold", "model", "role", "y_true", "probability"]
FOLDS = 3
# 40 px rather than 32: at 32 px ResNet-18's last block sees 1x1 maps, where BatchNorm normalises
# over the batch alone and eval-mode predictions lag far behind training (measured: test AUC
# 0.7-0.8 after 6 epochs, against 1.0 at 40 px for the same cost order).
SIZE = 40
CFG = dict(architecture="resnet18", modalities=["t1c"], epochs=6, batch_size=8, lr=1e-3,
           slices=2, patience=0, seed=0, device="cpu")


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    """24 internal subjects (12/12) and 2 external ones: class 1 has an enhancing rim around a
    dark core, class 0 a dark tumor."""
    root = tmp_path_factory.mktemp("separable")
    sheet, crops = synthetic_cohort(root / "crops", [0, 1] * 13, seed=0, size=SIZE,
                                    cohorts=["internal"] * 24 + ["external"] * 2)
    splits = make_folds(sheet, label="label", folds=FOLDS, seed=0, val_fraction=0.4)
    return root, sheet, crops, splits


def untrained_test_probabilities(cfg: TrainConfig, crops, splits, fold: int) -> pd.DataFrame:
    """The model train_fold starts from (same seeding, same construction), on the fold's test set."""
    seed_everything(cfg.seed + fold)
    model = build_model(cfg.architecture, len(cfg.modalities), init=cfg.init, weights=cfg.weights)
    test = splits[(splits["fold"] == fold) & (splits["role"] == "test")]
    samples = build_samples({s: crops[s] for s in test["subject"]}, cfg.modalities, dims=2,
                            slices=cfg.slices, depth=cfg.depth)
    p = predict_patients(model, samples, torch.device("cpu"), cfg.batch_size)
    return pd.DataFrame({"subject": samples.subjects, "y_true": test["label"].to_numpy(), "probability": p})


@pytest.fixture(scope="module")
def trained(separable):
    root, sheet, crops, splits = separable
    cfg = TrainConfig(**CFG)
    before, after, seconds = [], [], []
    for fold in range(FOLDS):
        before.append(untrained_test_probabilities(cfg, crops, splits, fold))
        t0 = time.perf_counter()
        preds = train_fold(cfg, crops, splits, out_dir=root / f"fold{fold}", model_name="t1c_resnet18",
                           fold=fold, threads=1)
        seconds.append(time.perf_counter() - t0)
        after.append(preds)
    return cfg, pd.concat(before, ignore_index=True), after, seconds


def test_learns_separable_signal(trained):
    cfg, before, after, seconds = trained
    test = pd.concat([p[p["role"] == "test"] for p in after], ignore_index=True)
    assert sorted(test["subject"]) == sorted(before["subject"])  # pooled: all 24 subjects once
    auc_before = auc(before["y_true"], before["probability"])
    auc_after = auc(test["y_true"], test["probability"])
    print(f"\npooled test AUC untrained {auc_before:.3f} -> trained {auc_after:.3f}; "
          f"training seconds per fold {[round(s, 1) for s in seconds]}")
    assert auc_after > 0.8
    assert auc_after >= auc_before + 0.2


def test_history(separable, trained):
    root = separable[0]
    for fold in range(FOLDS):
        history = pd.read_csv(root / f"fold{fold}" / "history.tsv", sep="\t")
        assert list(history.columns) == HISTORY_COLUMNS
        assert history["epoch"].tolist() == list(range(CFG["epochs"]))  # patience 0: no early stop
        assert np.isfinite(history["train_loss"]).all() and (history["train_loss"] > 0).all()
        assert history["val_auc"].between(0, 1).all()
        assert (history["val_loss"] > 0).all() and history["selected"].sum() == 1
        assert (history["seconds"] > 0).all()
        assert history["data_wait_share"].between(0, 1).all()
        assert (history["samples_per_s"] > 0).all()
        # it learns: the last epoch's loss is well below the first's
        assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]


def test_predictions_cover_the_fold(separable, trained):
    root, sheet, crops, splits = separable
    for fold, preds in enumerate(trained[2]):
        on_disk = pd.read_csv(root / f"fold{fold}" / "predictions.tsv", sep="\t")
        assert list(on_disk.columns) == PRED_COLUMNS
        expected = splits[splits["fold"] == fold].set_index("subject")
        assert sorted(on_disk["subject"]) == sorted(expected.index)
        on_disk = on_disk.set_index("subject")
        assert (on_disk["role"] == expected.loc[on_disk.index, "role"]).all()
        assert (on_disk["y_true"] == expected.loc[on_disk.index, "label"]).all()
        assert (on_disk["fold"] == fold).all() and (on_disk["model"] == "t1c_resnet18").all()
        assert on_disk["probability"].between(0, 1).all()
        np.testing.assert_allclose(on_disk.loc[preds["subject"], "probability"], preds["probability"],
                                   atol=1e-6)
        assert set(on_disk["role"]) == {"train", "val", "test", "external"}


def test_checkpoint_is_the_best_epoch_and_loads(separable, trained):
    root, sheet, crops, splits = separable
    cfg = trained[0]
    fold = 0
    ckpt = torch.load(root / f"fold{fold}" / "checkpoint.pt", weights_only=True)
    assert ckpt["architecture"] == "resnet18" and ckpt["modalities"] == ["t1c"]
    history = pd.read_csv(root / f"fold{fold}" / "history.tsv", sep="\t")
    # default train.select_on val_loss: the epoch of lowest validation loss, marked in the history
    assert ckpt["epoch"] == int(history["val_loss"].idxmin()) == int(history["selected"].idxmax())
    assert ckpt["val_loss"] == pytest.approx(history["val_loss"].min())
    model = build_model("resnet18", 1, init="checkpoint", weights=root / f"fold{fold}" / "checkpoint.pt")
    test = splits[(splits["fold"] == fold) & (splits["role"] == "test")]
    samples = build_samples({s: crops[s] for s in test["subject"]}, ["t1c"], dims=2, slices=cfg.slices,
                            depth=cfg.depth)
    p = predict_patients(model, samples, torch.device("cpu"), 8)
    preds = trained[2][fold].set_index("subject")
    np.testing.assert_allclose(p, preds.loc[samples.subjects, "probability"], rtol=0, atol=1e-6)


# ------------------------------------------------------------------- imbalance and determinism


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    """30 subjects, 80 % negative; small crops, as these runs only need to run."""
    root = tmp_path_factory.mktemp("imbalanced")
    labels = [1 if i % 5 == 0 else 0 for i in range(30)]
    sheet, crops = synthetic_cohort(root / "crops", labels, seed=1, size=24)
    splits = make_folds(sheet, label="label", folds=3, seed=0, val_fraction=0.4)
    return root, crops, splits


def run(imbalanced, name: str, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    root, crops, splits = imbalanced
    cfg = TrainConfig(**{**CFG, "epochs": 2, **overrides})
    preds = train_fold(cfg, crops, splits, out_dir=root / name, model_name="m", fold=1, threads=1)
    return preds, pd.read_csv(root / name / "history.tsv", sep="\t")


@pytest.fixture(scope="module")
def no_correction(imbalanced):
    return run(imbalanced, "none", imbalance="none")


@pytest.mark.parametrize("mode", ["weighted_loss", "balanced_sampler"])
def test_imbalance_modes_run_and_are_deterministic(imbalanced, no_correction, mode):
    root, crops, splits = imbalanced
    fold = splits[splits["fold"] == 1]
    train = fold[fold["role"] == "train"]
    assert train["label"].mean() == pytest.approx(0.2, abs=0.05)
    preds, history = run(imbalanced, f"{mode}_a", imbalance=mode)
    again, history_again = run(imbalanced, f"{mode}_b", imbalance=mode)
    assert len(preds) == 30 and sorted(preds["subject"]) == sorted(fold["subject"])
    assert np.isfinite(preds["probability"]).all()
    # same seed: bit-identical training and predictions on CPU
    pd.testing.assert_frame_equal(preds, again)
    pd.testing.assert_series_equal(history["train_loss"], history_again["train_loss"])
    pd.testing.assert_series_equal(history["val_auc"], history_again["val_auc"])
    # the mode is really applied: same seed and data, other loss / other batches
    none_preds, none_history = no_correction
    assert not np.allclose(history["train_loss"], none_history["train_loss"])
    assert not np.allclose(preds["probability"], none_preds["probability"])
    if mode == "weighted_loss":
        # pos_weight = n_neg / n_pos = 4 up-weights the positives' (larger) loss terms; the first
        # batches, before the runs diverge, see the same samples
        assert history["train_loss"].iloc[0] > none_history["train_loss"].iloc[0]


def test_other_seed_gives_other_model(imbalanced, no_correction):
    preds, _ = run(imbalanced, "none_seed1", imbalance="none", seed=1)
    assert not np.allclose(preds["probability"], no_correction[0]["probability"])
