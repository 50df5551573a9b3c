"""Training one model on one fold: seeded, early-stopped on inner-validation AUC, CUDA + AMP when
available, per-epoch history, patient-level predictions for every role. Optionally co-trains a
tumor-segmentation head (loss = classification BCE + seg_weight * (Dice + BCE) against the crop's
tumor mask); predictions always come from the classification logit alone."""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from oncoflow import atomic
from oncoflow.models.segmentation import dice_bce_loss
from oncoflow.models.catalog import ENCODERS_3D, INPUT_PREPARATION
from oncoflow.models.zoo import build_model, spatial_dims
from oncoflow.train.data import Samples, build_samples
from oncoflow.train.kernels import use_cpu_kernels

IMBALANCE = ("none", "weighted_loss", "balanced_sampler")


@dataclass
class TrainConfig:
    architecture: str
    modalities: list[str]
    init: str = "scratch"
    weights: Path | None = None
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    imbalance: str = "weighted_loss"
    patience: int = 8
    slices: int = 5
    depth: int = 16
    seed: int = 0
    augment: bool = True
    device: str = "auto"
    cotrain_segmentation: bool = False
    seg_weight: float = 0.5
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: dict[str, Any], pretrained: Path | None = None) -> TrainConfig:
        """The TrainConfig of a train_model rule's params (oncoflow.plan.StudyPlan.model_params).
        ``pretrained``: the pretrain checkpoint that init pretrained starts from (a rule input);
        otherwise models[].weights. Keys the schema leaves unset take this class's defaults."""
        init = params.get("init", cls.init)
        if init == "pretrained":
            weights = pretrained
        else:
            weights = Path(params["weights"]) if params.get("weights") else None
        return cls(
            architecture=params["architecture"], modalities=list(params["modalities"]), init=init,
            weights=weights, epochs=params["epochs"], batch_size=params["batch_size"], lr=params["lr"],
            weight_decay=params["weight_decay"], patience=params["patience"], imbalance=params["imbalance"],
            slices=params["crop"]["slices"], depth=params["crop"]["depth"], seed=params["seed"],
            cotrain_segmentation=bool(params.get("cotrain_segmentation", cls.cotrain_segmentation)),
            seg_weight=float(params.get("seg_weight", cls.seg_weight)),
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random in-plane flips and a mild per-sample intensity scale; a tumor mask gets the same
    flips. The random draws do not depend on the mask (same augmentation with and without)."""
    n = x.shape[0]
    flip_h = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    flip_w = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    x = x.clone()
    x[flip_h] = x[flip_h].flip(-2)
    x[flip_w] = x[flip_w].flip(-1)
    if mask is not None:
        mask = mask.clone()
        mask[flip_h] = mask[flip_h].flip(-2)
        mask[flip_w] = mask[flip_w].flip(-1)
    scale = (1 + 0.1 * (torch.rand(n, generator=generator) - 0.5)).to(x.device)
    return x * scale.view(-1, *([1] * (x.dim() - 1))), mask


@torch.no_grad()
def predict_patients(model: nn.Module, samples: Samples, device: torch.device, batch: int) -> np.ndarray:
    """Patient probability = mean of its slice (or volume) sigmoid probabilities."""
    model.eval()
    probs = []
    for start in range(0, len(samples.x), batch):
        xb = torch.from_numpy(samples.x[start : start + batch]).to(device)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            probs.append(torch.sigmoid(model(xb).float()).squeeze(1).cpu().numpy())
    p = np.concatenate(probs) if probs else np.zeros(0)
    out = np.zeros(len(samples.subjects))
    counts = np.bincount(samples.subject_index, minlength=len(samples.subjects))
    np.add.at(out, samples.subject_index, p)
    return out / np.maximum(counts, 1)


def safe_auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def train_fold(
    cfg: TrainConfig,
    crops: dict[str, Path],
    splits: pd.DataFrame,
    *,
    out_dir: Path,
    model_name: str,
    fold: int,
    threads: int = 1,
) -> pd.DataFrame:
    """Train on role 'train', select the epoch by AUC on 'val', predict every role of this fold.
    Writes checkpoint.pt, history.tsv and predictions.tsv into ``out_dir``."""
    torch.set_num_threads(threads)
    use_cpu_kernels()  # ONCOFLOW_CPU_KERNELS=reproducible: oneDNN off (bit-identical across CPUs)
    seed_everything(cfg.seed + fold)
    device = pick_device(cfg.device)
    dims = spatial_dims(cfg.architecture)
    fold_rows = splits[splits["fold"] == fold].set_index("subject")
    roles = {r: fold_rows.index[fold_rows["role"] == r].tolist() for r in ("train", "val")}
    cotrain = cfg.cotrain_segmentation
    prep = INPUT_PREPARATION.get(cfg.architecture)  # a pretrained brain encoder's own input
    data = {r: build_samples({s: crops[s] for s in subs}, cfg.modalities, dims=dims,
                             slices=cfg.slices, depth=cfg.depth, masks=cotrain and r == "train",
                             preparation=prep)
            for r, subs in roles.items()}
    y_train = fold_rows.loc[data["train"].subjects, "label"].to_numpy()[data["train"].subject_index]
    y_val = fold_rows.loc[data["val"].subjects, "label"].to_numpy()

    model = build_model(cfg.architecture, len(cfg.modalities), init=cfg.init, weights=cfg.weights,
                        segmentation=cotrain)
    if cfg.init == "pretrained":
        print(f"{model_name} fold {fold}: backbone from {cfg.weights} (classification head fresh)",
              file=sys.stderr, flush=True)
    elif cfg.init in ENCODERS_3D.values():
        print(f"{model_name} fold {fold}: encoder of {prep['network']} (classification head fresh); "
              f"input at {prep['spacing_mm']} mm, {prep['intensity']} intensities", file=sys.stderr, flush=True)
    model.to(device)
    n_pos, n_neg = int(y_train.sum()), int(len(y_train) - y_train.sum())
    pos_weight = torch.tensor(n_neg / max(n_pos, 1)) if cfg.imbalance == "weighted_loss" else None
    criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight.to(device) if pos_weight is not None else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    generator = torch.Generator().manual_seed(cfg.seed + fold)
    tensors = [torch.from_numpy(data["train"].x), torch.from_numpy(y_train.astype(np.float32))]
    if cotrain:
        tensors.append(torch.from_numpy(data["train"].mask))
    dataset = TensorDataset(*tensors)
    sampler = None
    if cfg.imbalance == "balanced_sampler":
        w = np.where(y_train == 1, 1.0 / max(n_pos, 1), 1.0 / max(n_neg, 1))
        sampler = WeightedRandomSampler(torch.from_numpy(w), len(w), generator=generator)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=sampler is None,
                        sampler=sampler, generator=generator, drop_last=len(dataset) > cfg.batch_size,
                        pin_memory=device.type == "cuda")

    out_dir.mkdir(parents=True, exist_ok=True)
    history, best_auc, stale = [], -np.inf, 0
    for epoch in range(cfg.epochs):
        model.train()
        start, wait, losses, parts, seen = time.perf_counter(), 0.0, [], [], 0
        t_data = time.perf_counter()
        for batch in loader:
            wait += time.perf_counter() - t_data
            seen += len(batch[0])
            xb, yb = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
            mb = batch[2].to(device, non_blocking=True) if cotrain else None
            if cfg.augment:
                xb, mb = augment_batch(xb, generator, mb)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                if cotrain:
                    logit, seg = model.forward_with_segmentation(xb)
                    cls_loss = criterion(logit.squeeze(1).float(), yb)
                    seg_loss, dice = dice_bce_loss(seg, mb)
                    loss = cls_loss + cfg.seg_weight * seg_loss
                    parts.append((float(cls_loss.detach()), float(seg_loss.detach()), float(dice)))
                else:
                    loss = criterion(model(xb).squeeze(1).float(), yb)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            t_data = time.perf_counter()
        scheduler.step()
        val_prob = predict_patients(model, data["val"], device, cfg.batch_size)
        val_auc = safe_auc(y_val, val_prob)
        elapsed = time.perf_counter() - start
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_auc": val_auc,
                        "seconds": round(elapsed, 3), "data_wait_share": round(wait / elapsed, 4),
                        "samples_per_s": round(seen / elapsed, 1)})  # drop_last: seen <= len(dataset)
        if cotrain:  # extra columns, after the usual ones
            cls_l, seg_l, dice = np.mean(parts, axis=0)
            history[-1].update(cls_loss=float(cls_l), seg_loss=float(seg_l), seg_dice=float(dice))
        score = val_auc if np.isfinite(val_auc) else -float(np.mean(losses))
        if score > best_auc:
            best_auc, stale = score, 0
            ckpt = {"model": model.state_dict(), "epoch": epoch, "val_auc": val_auc,
                    "architecture": cfg.architecture, "modalities": cfg.modalities}
            if cotrain:
                ckpt["cotrain_segmentation"] = True
            if prep:
                ckpt.update(init=cfg.init, input_preparation=prep)
            torch.save(ckpt, out_dir / "checkpoint.pt")
        else:
            stale += 1
        seg_note = (f" (classification {history[-1]['cls_loss']:.4f}, segmentation "
                    f"{history[-1]['seg_loss']:.4f}, Dice {history[-1]['seg_dice']:.3f})" if cotrain else "")
        print(f"{model_name} fold {fold} epoch {epoch + 1}/{cfg.epochs}: loss "
              f"{history[-1]['train_loss']:.4f}{seg_note} val AUC {val_auc:.3f} ({elapsed:.1f} s)",
              file=sys.stderr, flush=True)
        if cfg.patience and stale >= cfg.patience:
            break
    atomic.write_table(pd.DataFrame(history), out_dir / "history.tsv", index=False)

    best = torch.load(out_dir / "checkpoint.pt", map_location=device, weights_only=True)
    model.load_state_dict(best["model"])
    all_subjects = fold_rows.index.tolist()
    everything = build_samples({s: crops[s] for s in all_subjects}, cfg.modalities, dims=dims,
                               slices=cfg.slices, depth=cfg.depth, preparation=prep)
    prob = predict_patients(model, everything, device, cfg.batch_size)
    preds = pd.DataFrame({"subject": everything.subjects, "fold": fold, "model": model_name,
                          "role": fold_rows.loc[everything.subjects, "role"].to_numpy(),
                          "y_true": fold_rows.loc[everything.subjects, "label"].to_numpy(),
                          "probability": prob})
    atomic.write_table(preds, out_dir / "predictions.tsv", index=False, float_format="%.6f")
    return preds
