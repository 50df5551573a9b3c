"""Training a fold's tumor segmenter and predicting masks with it (MONAI 2D networks, Dice loss).

Each epoch sees every training slice that holds tumor and as many tumor-free brain slices drawn at
random (seeded), flipped left-right at random; the loss is MONAI's DiceCELoss: soft Dice over the
batch (a batch without tumor still scores its false positives) plus cross-entropy, which gives
the tiny tumors of a few ml a gradient from the first step (on the demo, Dice alone at lr 0.001
was still at loss 0.98 after 10 epochs). Nothing is downloaded: the network starts
from random weights. The checkpoint records the settings, the training subjects and the history.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from monai.losses import DiceCELoss
from monai.networks.nets import SegResNet, UNet
from torch import nn

from oncoflow.atomic import atomic_write
from oncoflow.segment.slices import SubjectSlices, largest_component, to_volume


@dataclass(frozen=True)
class SegmenterConfig:
    architecture: str
    inputs: list[str]
    size: int
    margin_mm: float
    epochs: int
    batch_size: int
    lr: float
    threshold: float
    seed: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SegmenterConfig:
        return cls(**{k: params[k] for k in cls.__dataclass_fields__})


def build_network(architecture: str, channels: int) -> nn.Module:
    """A MONAI 2D network with one tumor logit per pixel."""
    if architecture == "unet":
        return UNet(spatial_dims=2, in_channels=channels, out_channels=1, channels=(16, 32, 64, 128),
                    strides=(2, 2, 2), num_res_units=1)
    if architecture == "segresnet":
        return SegResNet(spatial_dims=2, in_channels=channels, out_channels=1, init_filters=16)
    raise ValueError(f"segment.architecture {architecture!r}: expected unet or segresnet")


def _epoch_indices(tumor_area: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every tumor slice and as many tumor-free ones (all of them when there are fewer), shuffled."""
    tumor = np.flatnonzero(tumor_area > 0)
    empty = np.flatnonzero(tumor_area == 0)
    drawn = rng.choice(empty, size=min(len(empty), max(len(tumor), 1)), replace=False)
    return rng.permutation(np.concatenate([tumor, drawn]))


def train_segmenter(subjects: dict[str, SubjectSlices], cfg: SegmenterConfig, out: Path, *,
                    fold: int | None = None, threads: int = 1) -> pd.DataFrame:
    """Fit on the slices of ``subjects`` (all with a manual mask); writes ``out`` (checkpoint) and
    returns the per-epoch history (loss, soft Dice on the training slices, seconds)."""
    missing = [s for s, v in subjects.items() if v.tumor is None]
    if missing or not subjects:
        raise ValueError(f"segmenter for fold {fold}: needs training patients with a manual tumor mask "
                         f"({'none given' if not subjects else 'without one: ' + ', '.join(missing)})")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(cfg.seed)
    x = torch.from_numpy(np.concatenate([v.images for v in subjects.values()]))
    y = torch.from_numpy(np.concatenate([v.tumor for v in subjects.values()])[:, None].astype(np.float32))
    area = y.sum(dim=(1, 2, 3)).numpy()
    net = build_network(cfg.architecture, x.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    loss_fn = DiceCELoss(sigmoid=True, batch=True)  # soft Dice over the batch + cross-entropy
    rows = []
    for epoch in range(1, cfg.epochs + 1):
        start = time.process_time()
        net.train()
        losses = []
        idx = _epoch_indices(area, rng)
        for b in range(0, len(idx), cfg.batch_size):
            batch = torch.from_numpy(idx[b:b + cfg.batch_size])
            xb, yb = x[batch], y[batch]
            flip = torch.from_numpy(rng.random(len(batch)) < 0.5)
            xb = torch.where(flip[:, None, None, None], xb.flip(-2), xb)
            yb = torch.where(flip[:, None, None, None], yb.flip(-2), yb)
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        rows.append({"epoch": epoch, "loss": float(np.mean(losses)), "train_dice": 1 - float(np.mean(losses)),
                     "cpu_seconds": time.process_time() - start})
        print(f"segmenter fold {fold}: epoch {epoch}/{cfg.epochs} Dice loss {rows[-1]['loss']:.3f}",
              file=sys.stderr)
    history = pd.DataFrame(rows)
    with atomic_write(out) as tmp:
        torch.save({"state_dict": net.state_dict(), "config": cfg.__dict__, "subjects": list(subjects),
                    "fold": fold, "history": history.to_dict("list")}, tmp)
    return history


def load_segmenter(path: Path) -> tuple[nn.Module, SegmenterConfig]:
    state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only
    cfg = SegmenterConfig(**state["config"])
    net = build_network(cfg.architecture, len(cfg.inputs))
    net.load_state_dict(state["state_dict"])
    return net.eval(), cfg


def training_subjects(path: Path) -> list[str]:
    """The patients a segmenter checkpoint was trained on."""
    return list(torch.load(path, map_location="cpu", weights_only=False)["subjects"])


@torch.no_grad()
def predict_probability(net: nn.Module, slices: SubjectSlices, batch_size: int = 32) -> np.ndarray:
    """Tumor probability of every slice, (depth, size, size)."""
    x = torch.from_numpy(slices.images)
    out = [torch.sigmoid(net(x[b:b + batch_size]))[:, 0] for b in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def predict_mask(net: nn.Module, cfg: SegmenterConfig, slices: SubjectSlices, brain: np.ndarray) -> np.ndarray:
    """The predicted tumor mask on the subject's canonical grid: the probability mapped back,
    thresholded, kept inside the brain, its largest connected component."""
    return predict_mask_and_raw(net, cfg, slices, brain)[0]


def predict_mask_and_raw(net: nn.Module, cfg: SegmenterConfig, slices: SubjectSlices,
                         brain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(:func:`predict_mask`, every voxel at or above the threshold, inside the brain or not)."""
    raw = to_volume(predict_probability(net, slices), slices.grid) >= cfg.threshold
    return largest_component(raw & brain), raw
