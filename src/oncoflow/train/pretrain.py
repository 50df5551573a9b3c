"""Label-free pretraining of a model's backbone: on one fold's own patients, or on another cohort.

``pretrain_fold``: only the fold's training and inner-validation patients are read
(``pretrain_subjects``): never a test patient of that fold, never an external cohort, and never a
label. ``pretrain_cohort``: every subject of another cohort's sheet (config pretrain.source:
cohort), one checkpoint that all folds start from. Tasks:

- ``segmentation``: the crop's tumor mask, Dice + BCE, through the same segmentation head that
  co-training uses (ResNet family; 2D: every slice of the crop, 3D: the volume at ``depth``).
- ``tumor_slice`` (2D): does a slice hold tumor? Every slice of the crop; the crop's margin slices
  (crop.margin_mm above and below the tumor) are the negatives; positive-class weighted BCE.
- ``rotation``: which of 0, 90, 180, 270 degrees each crop was turned in-plane (4-way cross
  entropy, a 4-logit head that is dropped afterwards; 2D slices or 3D volumes). Needs no tumor
  mask, so it also serves normal-head cohorts. No flip augmentation (two flips are a 180-degree
  turn, which would make the target ambiguous).

No early stopping (there is no label to select on): the checkpoint is the last epoch's. It holds
the state dict, the architecture, modalities, task and the subjects it saw, so that a reviewer (and
a test) can check that no test patient reached it. ``oncoflow.models.zoo.load_backbone`` loads it
into the classifier with a fresh classification head.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from oncoflow.models.catalog import INPUT_PREPARATION, task_unsupported
from oncoflow.models.segmentation import dice_bce_loss
from oncoflow.models.zoo import build_model, set_head_outputs, spatial_dims
from oncoflow.train.data import build_samples
from oncoflow.train.folds import pretrain_subjects
from oncoflow.train.kernels import use_cpu_kernels
from oncoflow.train.loop import augment_batch, pick_device, seed_everything

HISTORY_COLUMNS = ("epoch", "loss", "score", "seconds", "data_wait_share", "samples_per_s")


@dataclass
class PretrainConfig:
    task: str
    architecture: str
    modalities: list[str]
    init: str = "scratch"  # of the pretraining itself: scratch, imagenet or medicalnet
    weights: Path | None = None
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    depth: int = 16
    seed: int = 0
    augment: bool = True
    device: str = "auto"

    @classmethod
    def from_params(cls, params: dict) -> PretrainConfig:
        """The PretrainConfig of a pretrain rule's params (oncoflow.plan.StudyPlan.pretrain_params)."""
        return cls(
            task=params["task"], architecture=params["architecture"], modalities=list(params["modalities"]),
            init=params["init"], weights=Path(params["weights"]) if params.get("weights") else None,
            epochs=params["epochs"], batch_size=params["batch_size"], lr=params["lr"],
            weight_decay=params["weight_decay"], depth=params["crop"]["depth"], seed=params["seed"],
        )


def pretrain_config(params: dict) -> PretrainConfig:
    return PretrainConfig.from_params(params)


def pretrain_fold(
    cfg: PretrainConfig,
    crops: dict[str, Path],
    splits: pd.DataFrame,
    *,
    fold: int,
    out_dir: Path,
    name: str = "pretrain",
    threads: int = 1,
) -> pd.DataFrame:
    """Pretrain on the fold's train + val patients (crops of other subjects may be passed: they are
    never opened). Writes checkpoint.pt and history.tsv into ``out_dir``; returns the history.
    History ``score``: mean soft Dice (segmentation) or accuracy (tumor_slice, rotation)."""
    reason = task_unsupported(cfg.task, cfg.architecture)
    if reason:  # before anything is read
        raise ValueError(reason)
    subjects = pretrain_subjects(splits, fold)
    missing = [s for s in subjects if s not in crops]
    if missing:
        raise KeyError(f"no crop for fold {fold}'s train/val patients {missing[:3]}")
    return pretrain_backbone(cfg, {s: crops[s] for s in subjects}, out_dir=out_dir, name=name,
                             seed=cfg.seed + fold, meta={"fold": fold}, threads=threads)


def pretrain_cohort(cfg: PretrainConfig, crops: dict[str, Path], *, out_dir: Path,
                    name: str = "pretrain", threads: int = 1) -> pd.DataFrame:
    """Pretrain on every crop of another cohort (config pretrain.source: cohort)."""
    return pretrain_backbone(cfg, crops, out_dir=out_dir, name=name, seed=cfg.seed,
                             meta={"fold": "cohort"}, threads=threads)


def rotate_batch(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn each sample by k x 90 degrees in its last two (in-plane) axes, k drawn per sample."""
    k = torch.randint(0, 4, (len(x),), generator=generator)
    out = torch.stack([torch.rot90(xi, int(ki), dims=(-2, -1)) for xi, ki in zip(x, k)])
    return out, k.to(x.device)


def pretrain_backbone(
    cfg: PretrainConfig,
    crops: dict[str, Path],
    *,
    out_dir: Path,
    name: str,
    seed: int,
    meta: dict[str, object],
    threads: int = 1,
) -> pd.DataFrame:
    """Pretrain on exactly these subjects' crops; the checkpoint records them (and ``meta``)."""
    reason = task_unsupported(cfg.task, cfg.architecture)
    if reason:
        raise ValueError(reason)
    torch.set_num_threads(threads)
    use_cpu_kernels()  # ONCOFLOW_CPU_KERNELS=reproducible: oneDNN off (bit-identical across CPUs)
    seed_everything(seed)
    device = pick_device(cfg.device)
    dims = spatial_dims(cfg.architecture)
    subjects = sorted(crops)
    where = f"{name} ({', '.join(f'{k} {v}' for k, v in meta.items())})"
    data = build_samples(crops, cfg.modalities, dims=dims, slices=0, depth=cfg.depth, masks=True,
                         all_slices=True, preparation=INPUT_PREPARATION.get(cfg.architecture))
    segmentation, rotation = cfg.task == "segmentation", cfg.task == "rotation"
    model = build_model(cfg.architecture, len(cfg.modalities), init=cfg.init, weights=cfg.weights,
                        segmentation=segmentation).to(device)
    if segmentation:
        target = torch.from_numpy(data.mask)
        criterion = None
    elif rotation:
        set_head_outputs(model, 4)
        model.to(device)
        target = torch.zeros(len(data.x), dtype=torch.long)  # drawn per batch
        criterion = nn.CrossEntropyLoss()
    else:
        has_tumor = data.mask.reshape(len(data.mask), -1).any(axis=1)
        n_pos, n_neg = int(has_tumor.sum()), int((~has_tumor).sum())
        if not n_pos or not n_neg:
            raise ValueError(f"{where}: tumor_slice pretraining needs slices with and without tumor; "
                             f"the crops have {n_pos} with and {n_neg} without (crop.margin_mm > 0 adds "
                             "tumor-free slices above and below the tumor)")
        target = torch.from_numpy(has_tumor.astype(np.float32))
        criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(n_neg / n_pos, device=device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    generator = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(torch.from_numpy(data.x), target)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, generator=generator,
                        drop_last=len(dataset) > cfg.batch_size, pin_memory=device.type == "cuda")
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{where}: {cfg.task} pretraining of {cfg.architecture} on {len(subjects)} subjects "
          f"({len(dataset)} samples)", file=sys.stderr, flush=True)

    history = []
    for epoch in range(cfg.epochs):
        model.train()
        start, wait, losses, scores, seen = time.perf_counter(), 0.0, [], [], 0
        t_data = time.perf_counter()
        for xb, tb in loader:
            wait += time.perf_counter() - t_data
            seen += len(xb)
            xb, tb = xb.to(device, non_blocking=True), tb.to(device, non_blocking=True)
            if rotation:
                xb, tb = rotate_batch(xb, generator)
            elif cfg.augment:
                xb, flipped = augment_batch(xb, generator, tb if segmentation else None)
                tb = flipped if segmentation else tb
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                if segmentation:
                    _, seg = model.forward_with_segmentation(xb)
                    loss, score = dice_bce_loss(seg, tb)
                elif rotation:
                    logits = model(xb).float()
                    loss = criterion(logits, tb)
                    score = (logits.argmax(1) == tb).float().mean()
                else:
                    logit = model(xb).squeeze(1).float()
                    loss = criterion(logit, tb)
                    score = ((logit > 0).float() == tb).float().mean()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            scores.append(float(score))
            t_data = time.perf_counter()
        scheduler.step()
        elapsed = time.perf_counter() - start
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "score": float(np.mean(scores)),
                        "seconds": round(elapsed, 3), "data_wait_share": round(wait / elapsed, 4),
                        "samples_per_s": round(seen / elapsed, 1)})
        print(f"{where} epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]['loss']:.4f} "
              f"{'Dice' if segmentation else 'accuracy'} {history[-1]['score']:.3f} ({elapsed:.1f} s)",
              file=sys.stderr, flush=True)
    torch.save({"model": model.state_dict(), "architecture": cfg.architecture,
                "modalities": list(cfg.modalities), "task": cfg.task, "pretrain": name, **meta,
                "epochs": cfg.epochs, "subjects": subjects},
               out_dir / "checkpoint.pt")
    out = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    out.to_csv(out_dir / "history.tsv", sep="\t", index=False)
    return out
