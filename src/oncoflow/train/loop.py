"""Training one model on one fold: seeded, CUDA + AMP when available, per-epoch history,
patient-level predictions for every role. Optionally co-trains a tumor-segmentation head (loss =
classification BCE + seg_weight * (Dice + BCE) against the crop's tumor mask); predictions always
come from the classification logit alone.

Which epoch is kept (``select_on``, config ``train.select_on``):

- ``val_loss`` (default): the lowest validation loss, the patient-level binary cross-entropy of
  the validation patients' probabilities, class-balanced when training was (``weighted_loss``,
  ``balanced_sampler``: the mean of the two classes' mean losses, the objective the model was
  trained on). A proper scoring rule keeps changing after the patients are separated, so it does
  not saturate: on the demo (4 validation patients per fold) the AUC was 1.000 in 19 of 20 fold
  models and a strict-maximum rule kept the first epoch that reached it.
- ``val_auc``: the highest validation AUC, ties broken by the lower validation loss.

How (``selection``, config ``train.selection``):

- ``inner_val``: trained on the fold's ``train`` patients, the epoch chosen on its ``val``
  patients (early stopping with ``patience`` on the same criterion); those patients' scores
  selected the model (recalibration: prior shift, oncoflow.metrics.recalibration).
- ``nested``: inner stratified ``inner_folds``-fold cross-validation over all the fold's
  non-test patients (``train`` and ``val``) trains ``inner_folds`` models for ``epochs`` epochs
  each, side by side; the epoch is chosen on their pooled out-of-fold predictions. The non-test
  patients' scores are their inner out-of-fold predictions at the chosen epoch, written with role
  ``val``: scored by a model that never trained on them, they fit the fold's calibration map,
  threshold and stacking fusion downstream. Which model then scores the test and external patients
  (``nested_model``):

  - ``ensemble`` (default): the inner models themselves at the chosen epoch, their logits averaged
    (oncoflow.models.ensemble): the very models whose out-of-fold scores fitted the map.
    ``inner_folds`` trainings per fold; the checkpoint holds all of them.
  - ``refit``: one model refitted on all those patients for exactly that many epochs (same
    schedule). ``inner_folds + 1`` trainings. The map fitted on the inner models' scores is applied
    to a model it never saw, on trust that its scale is theirs (on LGG, 5 of 15 folds refitted for
    one epoch). Measured on LGG (benchmarks/lgg_radiogenomics.md), the two score alike: AUC 0.637
    vs 0.628 over 3 repeats, calibration slopes 1.03, 0.67, 0.64 vs 0.85, 0.84, 0.06.

A validation set with fewer than :data:`oncoflow.train.selection.SELECTABLE_MINORITY` patients of its smaller class is
too small to select an epoch reliably; the run log says so (and tables/selection.tsv flags it).
"""

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
from oncoflow.models.ensemble import InnerEnsemble
from oncoflow.models.zoo import build_model, spatial_dims
from oncoflow.crop.tumor_crop import cropped_patients
from oncoflow.train.data import Samples, build_samples
from oncoflow.train.kernels import use_cpu_kernels
from oncoflow.train.selection import (
    SELECT_ON,
    NESTED_MODELS,
    SELECTIONS,
    better,
    selection_warning,
    validation_loss,
)

IMBALANCE = ("none", "weighted_loss", "balanced_sampler")
#: history.tsv columns (co-training appends cls_loss, seg_loss, seg_dice).
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_auc", "selected", "seconds", "data_wait_share",
                   "samples_per_s")


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
    select_on: str = "val_loss"
    selection: str = "inner_val"
    inner_folds: int = 3
    nested_model: str = NESTED_MODELS[0]  # the schema default, tested equal
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
            select_on=params.get("select_on", cls.select_on), selection=params.get("selection", cls.selection),
            inner_folds=int(params.get("inner_folds", cls.inner_folds)),
            nested_model=params.get("nested_model", cls.nested_model),
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




class _Run:
    """One model trained on one set of samples, epoch by epoch (seeded, optional co-training)."""

    def __init__(self, cfg: TrainConfig, train: Samples, y_train: np.ndarray, device: torch.device, seed: int):
        self.cfg, self.device, self.train = cfg, device, train
        self.cotrain = cfg.cotrain_segmentation
        self.model = build_model(cfg.architecture, len(cfg.modalities), init=cfg.init, weights=cfg.weights,
                                 segmentation=self.cotrain).to(device)
        n_pos, n_neg = int(y_train.sum()), int(len(y_train) - y_train.sum())
        pos_weight = torch.tensor(n_neg / max(n_pos, 1)) if cfg.imbalance == "weighted_loss" else None
        self.criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight.to(device) if pos_weight is not None else None)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(cfg.epochs, 1))
        self.scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
        self.generator = torch.Generator().manual_seed(seed)
        tensors = [torch.from_numpy(train.x), torch.from_numpy(y_train.astype(np.float32))]
        if self.cotrain:
            tensors.append(torch.from_numpy(train.mask))
        dataset = TensorDataset(*tensors)
        sampler = None
        if cfg.imbalance == "balanced_sampler":
            w = np.where(y_train == 1, 1.0 / max(n_pos, 1), 1.0 / max(n_neg, 1))
            sampler = WeightedRandomSampler(torch.from_numpy(w), len(w), generator=self.generator)
        self.loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                                 generator=self.generator, drop_last=len(dataset) > cfg.batch_size,
                                 pin_memory=device.type == "cuda")

    def epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch; the history row (without validation columns)."""
        cfg, device, model = self.cfg, self.device, self.model
        model.train()
        start, wait, losses, parts, seen = time.perf_counter(), 0.0, [], [], 0
        t_data = time.perf_counter()
        for batch in self.loader:
            wait += time.perf_counter() - t_data
            seen += len(batch[0])
            xb, yb = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
            mb = batch[2].to(device, non_blocking=True) if self.cotrain else None
            if cfg.augment:
                xb, mb = augment_batch(xb, self.generator, mb)
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                if self.cotrain:
                    logit, seg = model.forward_with_segmentation(xb)
                    cls_loss = self.criterion(logit.squeeze(1).float(), yb)
                    seg_loss, dice = dice_bce_loss(seg, mb)
                    loss = cls_loss + cfg.seg_weight * seg_loss
                    parts.append((float(cls_loss.detach()), float(seg_loss.detach()), float(dice)))
                else:
                    loss = self.criterion(model(xb).squeeze(1).float(), yb)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            losses.append(float(loss.detach()))
            t_data = time.perf_counter()
        self.scheduler.step()
        elapsed = time.perf_counter() - start
        row: dict[str, Any] = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": np.nan,
                               "val_auc": np.nan, "selected": False, "seconds": round(elapsed, 3),
                               "data_wait_share": round(wait / max(elapsed, 1e-9), 4),
                               "samples_per_s": round(seen / max(elapsed, 1e-9), 1)}  # drop_last: seen <= n
        if self.cotrain:
            cls_l, seg_l, dice = np.mean(parts, axis=0)
            row.update(cls_loss=float(cls_l), seg_loss=float(seg_l), seg_dice=float(dice))
        return row

    def checkpoint(self, epoch: int, row: dict[str, Any]) -> dict[str, Any]:
        ckpt = {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()}, "epoch": epoch,
                "val_auc": row["val_auc"], "val_loss": row["val_loss"], "select_on": self.cfg.select_on,
                "selection": self.cfg.selection, "architecture": self.cfg.architecture,
                "modalities": self.cfg.modalities}
        if self.cfg.selection == "nested":
            ckpt["nested_model"] = self.cfg.nested_model
        if self.cotrain:
            ckpt["cotrain_segmentation"] = True
        prep = INPUT_PREPARATION.get(self.cfg.architecture)
        if prep:
            ckpt.update(init=self.cfg.init, input_preparation=prep)
        return ckpt


def _log_epoch(model_name: str, fold: int, cfg: TrainConfig, row: dict[str, Any], where: str = "") -> None:
    seg_note = (f" (classification {row['cls_loss']:.4f}, segmentation {row['seg_loss']:.4f}, Dice "
                f"{row['seg_dice']:.3f})" if "cls_loss" in row else "")
    print(f"{model_name} fold {fold}{where} epoch {row['epoch'] + 1}/{cfg.epochs}: loss {row['train_loss']:.4f}"
          f"{seg_note} val loss {row['val_loss']:.4f} val AUC {row['val_auc']:.3f} ({row['seconds']:.1f} s)",
          file=sys.stderr, flush=True)


def _samples(cfg: TrainConfig, crops: dict[str, Path], subjects: list[str], masks: bool = False) -> Samples:
    return build_samples({s: crops[s] for s in subjects}, cfg.modalities, dims=spatial_dims(cfg.architecture),
                         slices=cfg.slices, depth=cfg.depth, masks=masks,
                         preparation=INPUT_PREPARATION.get(cfg.architecture))  # a pretrained brain encoder's own input


def _select_inner_val(cfg: TrainConfig, crops: dict[str, Path], fold_rows: pd.DataFrame, device: torch.device,
                      seed: int, model_name: str, fold: int) -> tuple[list[dict[str, Any]], dict[str, Any], None, nn.Module]:
    """Train on role train, choose the epoch on role val; (history, best checkpoint, None, model)."""
    roles = {r: fold_rows.index[fold_rows["role"] == r].tolist() for r in ("train", "val")}
    train = _samples(cfg, crops, roles["train"], masks=cfg.cotrain_segmentation)
    val = _samples(cfg, crops, roles["val"])
    y_train = fold_rows.loc[train.subjects, "label"].to_numpy()[train.subject_index]
    y_val = fold_rows.loc[val.subjects, "label"].to_numpy()
    if warning := selection_warning(y_val, f"{model_name} fold {fold}"):
        print(f"WARNING {warning}", file=sys.stderr, flush=True)
    run = _Run(cfg, train, y_train, device, seed)
    balanced = cfg.imbalance != "none"
    history, best, best_row, stale = [], {}, None, 0
    for epoch in range(cfg.epochs):
        row = run.epoch(epoch)
        p = predict_patients(run.model, val, device, cfg.batch_size)
        row.update(val_loss=validation_loss(y_val, p, balanced), val_auc=safe_auc(y_val, p))
        history.append(row)
        _log_epoch(model_name, fold, cfg, row)
        if better(row, best_row, cfg.select_on):
            best, best_row, stale = run.checkpoint(epoch, row), row, 0
        else:
            stale += 1
        if cfg.patience and stale >= cfg.patience:
            break
    return history, best, None, run.model


def _select_nested(cfg: TrainConfig, crops: dict[str, Path], fold_rows: pd.DataFrame, device: torch.device,
                   seed: int, model_name: str, fold: int) -> tuple[list[dict[str, Any]], dict[str, Any], pd.Series, nn.Module]:
    """Inner k-fold CV over the fold's non-test patients chooses the epoch; the fold model is the
    inner models at that epoch (``nested_model`` ensemble) or one model refitted on all of them for
    that many epochs (refit). (inner-CV history, the fold model's checkpoint, out-of-fold
    probabilities of the non-test patients at the chosen epoch, the fold model)."""
    from sklearn.model_selection import StratifiedKFold

    pool = fold_rows.index[fold_rows["role"].isin(["train", "val"])].tolist()
    y_pool = fold_rows.loc[pool, "label"].to_numpy().astype(int)
    k = cfg.inner_folds
    if int(np.bincount(y_pool, minlength=2).min()) < k:
        raise ValueError(f"{model_name} fold {fold}: train.inner_folds={k} but the smaller class has only "
                         f"{int(np.bincount(y_pool, minlength=2).min())} training patients; lower train.inner_folds")
    if warning := selection_warning(y_pool, f"{model_name} fold {fold} (nested, {len(pool)} training patients)"):
        print(f"WARNING {warning}", file=sys.stderr, flush=True)
    oof = np.full((cfg.epochs, len(pool)), np.nan)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    inner = []  # (run, its held-out samples, their positions in pool), trained side by side
    for j, (fit_idx, val_idx) in enumerate(splitter.split(np.zeros(len(pool)), y_pool)):
        fit = _samples(cfg, crops, [pool[i] for i in fit_idx], masks=cfg.cotrain_segmentation)
        run = _Run(cfg, fit, y_pool[fit_idx][fit.subject_index], device, seed + 7919 * (j + 1))
        inner.append((run, _samples(cfg, crops, [pool[i] for i in val_idx]), val_idx))
    balanced = cfg.imbalance != "none"
    history: list[dict[str, Any]] = []
    chosen, states = 0, []
    for epoch in range(cfg.epochs):
        losses, seconds = [], 0.0
        for j, (run, val, val_idx) in enumerate(inner):
            row = run.epoch(epoch)
            oof[epoch, val_idx] = predict_patients(run.model, val, device, cfg.batch_size)
            losses.append(row["train_loss"])
            seconds += row["seconds"]
            row.update(val_loss=validation_loss(y_pool[val_idx], oof[epoch, val_idx], balanced),
                       val_auc=safe_auc(y_pool[val_idx], oof[epoch, val_idx]))
            _log_epoch(model_name, fold, cfg, row, f" inner {j + 1}/{k}")
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                        "val_loss": validation_loss(y_pool, oof[epoch], balanced), "val_auc": safe_auc(y_pool, oof[epoch]),
                        "selected": False, "seconds": round(seconds, 3), "data_wait_share": np.nan,
                        "samples_per_s": np.nan})
        if epoch == 0 or better(history[epoch], history[chosen], cfg.select_on):
            chosen = epoch
            if cfg.nested_model == "ensemble":  # the members as they are at the kept epoch
                states = [{n: v.detach().clone() for n, v in run.model.state_dict().items()} for run, _, _ in inner]
    what = (f"the {k} inner models at that epoch score the test patients (mean logit)"
            if cfg.nested_model == "ensemble" else f"refitting on all {len(pool)} for {chosen + 1} epochs")
    print(f"{model_name} fold {fold}: inner {k}-fold CV over {len(pool)} patients chose epoch {chosen + 1} "
          f"(out-of-fold val loss {history[chosen]['val_loss']:.4f}, AUC {history[chosen]['val_auc']:.3f}); {what}",
          file=sys.stderr, flush=True)
    oof_chosen = pd.Series(oof[chosen], index=pool)
    if cfg.nested_model == "ensemble":
        for (run, _, _), state in zip(inner, states):
            run.model.load_state_dict(state)
        model = InnerEnsemble([run.model for run, _, _ in inner])
        ckpt = inner[0][0].checkpoint(chosen, history[chosen])
        ckpt.update(model={n: v.detach().clone() for n, v in model.state_dict().items()}, ensemble=k)
        return history, ckpt, oof_chosen, model
    del inner  # the refit trains alone
    everything = _samples(cfg, crops, pool, masks=cfg.cotrain_segmentation)
    run = _Run(cfg, everything, y_pool[everything.subject_index], device, seed)
    for epoch in range(chosen + 1):
        row = run.epoch(epoch)
        print(f"{model_name} fold {fold} refit epoch {epoch + 1}/{chosen + 1}: loss {row['train_loss']:.4f}",
              file=sys.stderr, flush=True)
    return history, run.checkpoint(chosen, history[chosen]), oof_chosen, run.model


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
    """Train one fold's model and choose its epoch by ``cfg.selection`` / ``cfg.select_on`` (module
    docstring); predict every role of this fold. Writes checkpoint.pt, history.tsv (one row per
    epoch, ``selected`` marking the kept one) and predictions.tsv into ``out_dir``."""
    if cfg.select_on not in SELECT_ON or cfg.selection not in SELECTIONS or cfg.nested_model not in NESTED_MODELS:
        raise ValueError(f"{model_name}: select_on {cfg.select_on!r} / selection {cfg.selection!r} / nested_model "
                         f"{cfg.nested_model!r}: choose from {SELECT_ON} / {SELECTIONS} / {NESTED_MODELS}")
    torch.set_num_threads(threads)
    use_cpu_kernels()  # ONCOFLOW_CPU_KERNELS=reproducible: oneDNN off (bit-identical across CPUs)
    seed_everything(cfg.seed + fold)
    device = pick_device(cfg.device)
    fold_rows = cropped_patients(splits[splits["fold"] == fold].set_index("subject"), crops, f"{model_name} fold {fold}")
    if cfg.init == "pretrained":
        print(f"{model_name} fold {fold}: backbone from {cfg.weights} (classification head fresh)",
              file=sys.stderr, flush=True)
    elif cfg.init in ENCODERS_3D.values():
        prep = INPUT_PREPARATION[cfg.architecture]
        print(f"{model_name} fold {fold}: encoder of {prep['network']} (classification head fresh); "
              f"input at {prep['spacing_mm']} mm, {prep['intensity']} intensities", file=sys.stderr, flush=True)
    select = _select_nested if cfg.selection == "nested" else _select_inner_val
    history, best, oof, model = select(cfg, crops, fold_rows, device, cfg.seed + fold, model_name, fold)
    history[best["epoch"]]["selected"] = True
    print(f"{model_name} fold {fold}: kept epoch {best['epoch'] + 1} of {len(history)} run (selection "
          f"{cfg.selection}, by {cfg.select_on})", file=sys.stderr, flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = [c for c in ("cls_loss", "seg_loss", "seg_dice") if c in history[0]]
    atomic.write_table(pd.DataFrame(history, columns=[*HISTORY_COLUMNS, *extra]), out_dir / "history.tsv",
                       index=False)
    torch.save(best, out_dir / "checkpoint.pt")

    model.load_state_dict(best["model"])
    everything = _samples(cfg, crops, fold_rows.index.tolist())
    prob = pd.Series(predict_patients(model, everything, device, cfg.batch_size), index=everything.subjects)
    role = fold_rows.loc[everything.subjects, "role"]
    if oof is not None:  # nested: every non-test patient is scored out of fold (role val)
        prob.loc[oof.index] = oof.to_numpy()
        role = role.where(~role.index.isin(oof.index), "val")
    preds = pd.DataFrame({"subject": everything.subjects, "fold": fold, "model": model_name,
                          "role": role.to_numpy(), "y_true": fold_rows.loc[everything.subjects, "label"].to_numpy(),
                          "probability": prob.to_numpy()})
    atomic.write_table(preds, out_dir / "predictions.tsv", index=False, float_format="%.6f")
    return preds
