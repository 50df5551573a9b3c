"""Explanation maps of one CNN fold model for its test patients, and their sanity check.

Model-parameter randomisation (Adebayo et al., NeurIPS 2018): the same maps are computed from the
same architecture with freshly initialised weights, drawn with the fold's training seed (for a model
trained from scratch: the very weights training started from, so an untrained checkpoint scores 1);
the Spearman rank correlation between
each patient's trained and random maps says whether a map depends on what the model learned (a map
that survives randomisation shows the input, e.g. its edges, not the model). Localisation: the
share of each map's mass inside the crop's tumor mask against the share of the grid the mask
covers (a map that ignores the tumor has mass share ~ area share), and likewise inside the brain
(the crop's nonzero voxels: crops are zero outside the brain mask; a pretrained brain encoder's
input is re-normalised over its window, so there the brain share is left empty).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from torch import nn

from oncoflow.explain.maps import METHODS, explain
from oncoflow.models.catalog import INPUT_PREPARATION
from oncoflow.models.ensemble import ensemble_size, fold_network, network_from_checkpoint
from oncoflow.models.zoo import spatial_dims
from oncoflow.crop.tumor_crop import cropped_patients
from oncoflow.train.data import Samples, build_samples

#: Per-patient columns of the sanity table.
PATIENT_COLUMNS = ("model", "fold", "subject", "method", "layer", "flat_map", "tumor_share", "tumor_area_share",
                   "brain_share", "brain_area_share", "random_spearman", "seconds")
#: Per model, fold and method (:func:`summarise`).
SUMMARY_COLUMNS = ("model", "fold", "method", "layer", "n_patients", "tumor_share", "tumor_area_share",
                   "tumor_enrichment", "patients_tumor_above_area", "patients_flat_map", "brain_share", "brain_area_share",
                   "random_spearman", "weights_independent", "seconds_per_patient")


FLAT_TOLERANCE = 1e-4  # a map whose range is below this fraction of its maximum is flat


@dataclass
class FoldModel:
    model: nn.Module
    architecture: str
    modalities: list[str]
    cotrain: bool


def load_fold_model(checkpoint: Path) -> FoldModel:
    """The trained model of a train_model checkpoint (architecture and modalities from the checkpoint;
    an inner ensemble of nested selection as one model, oncoflow.models.ensemble)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = network_from_checkpoint(ckpt, str(checkpoint))
    return FoldModel(model, ckpt["architecture"], list(ckpt["modalities"]), bool(ckpt.get("cotrain_segmentation")))


def randomised(fold_model: FoldModel, seed: int) -> FoldModel:
    """The same network (an ensemble: as many members) with fresh (scratch) weights drawn from ``seed``."""
    torch.manual_seed(seed)
    model = fold_network(fold_model.architecture, len(fold_model.modalities), segmentation=fold_model.cotrain,
                         size=ensemble_size(fold_model.model))
    return FoldModel(model.eval(), fold_model.architecture, fold_model.modalities, fold_model.cotrain)


def model_samples(fold_model: FoldModel, crops: dict[str, Path], crop: dict) -> Samples:
    """The model's input for each subject exactly as training built it, with the tumor mask."""
    return build_samples(crops, fold_model.modalities, dims=spatial_dims(fold_model.architecture),
                         slices=int(crop["slices"]), depth=int(crop["depth"]), masks=True,
                         preparation=INPUT_PREPARATION.get(fold_model.architecture))


def _share(mass: np.ndarray, region: np.ndarray) -> float:
    total = float(mass.sum())
    return float(mass[region].sum() / total) if total > 0 else float("nan")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:  # a constant map ranks nothing
        return float("nan")
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def patient_rows(maps: np.ndarray, random_maps: np.ndarray, samples: Samples, i: int,
                 prepared: bool = False) -> dict[str, float]:
    """Localisation and randomisation figures of subject ``i`` (its rows of the samples)."""
    rows = samples.subject_index == i
    mass, rand = maps[rows], random_maps[rows]
    tumor = samples.mask[rows][:, 0].astype(bool)
    brain = np.any(samples.x[rows] != 0, axis=1)
    # flat: no input (slice, volume) of the map varies beyond float rounding, e.g. Grad-CAM on a 1x1
    # last stage (upsampling leaves ~1e-7 ripples whose ranks trained and random maps share): it says
    # nothing about where the model looked, and its ranks correlate nothing
    flat = all(np.ptp(m) <= FLAT_TOLERANCE * float(np.abs(m).max()) for m in mass)
    return {"flat_map": flat, "tumor_share": _share(mass, tumor), "tumor_area_share": float(tumor.mean()),
            "brain_share": np.nan if prepared else _share(mass, brain),
            "brain_area_share": np.nan if prepared else float(brain.mean()),
            "random_spearman": np.nan if flat else _spearman(mass, rand)}


def explain_fold(fold_model: FoldModel, crops: dict[str, Path], crop: dict, *, model_name: str, fold: int,
                 seed: int, methods: tuple[str, ...] = METHODS) -> tuple[pd.DataFrame, dict[str, np.ndarray], Samples]:
    """Maps of ``methods`` for every subject of ``crops`` from the trained and the randomised model.
    Returns (per-patient table, method -> maps on the model's input grid, the samples)."""
    samples = model_samples(fold_model, crops, crop)
    random_model = randomised(fold_model, seed)
    prepared = fold_model.architecture in INPUT_PREPARATION
    rows, all_maps = [], {}
    for method in methods:
        start = time.perf_counter()
        maps, layer = explain(fold_model.model, fold_model.architecture, samples.x, method)
        seconds = (time.perf_counter() - start) / max(len(samples.subjects), 1)
        random_maps, _ = explain(random_model.model, random_model.architecture, samples.x, method)  # same layer
        all_maps[method] = maps
        for i, subject in enumerate(samples.subjects):
            rows.append({"model": model_name, "fold": fold, "subject": subject, "method": method,
                         "layer": "" if layer is None else str(layer),
                         **patient_rows(maps, random_maps, samples, i, prepared), "seconds": round(seconds, 3)})
        print(f"{model_name} fold {fold}: {method} maps of {len(samples.subjects)} patients"
              f"{'' if layer is None else f' on {layer}'} ({seconds:.1f} s a patient, trained model)",
              file=sys.stderr, flush=True)
    return pd.DataFrame(rows, columns=list(PATIENT_COLUMNS)), all_maps, samples


def summarise(patients: pd.DataFrame, max_random_spearman: float) -> pd.DataFrame:
    """Per model, fold and method: medians over patients; ``weights_independent`` when the median
    trained-vs-random rank correlation reaches ``max_random_spearman`` (the maps do not depend on
    the learned weights). A flat map says nothing about where the model looked and has no rank
    correlation: no mass (Grad-CAM's ReLU leaves nothing when every weighted activation is
    negative) or no variation (Grad-CAM on a 1x1 last stage, e.g. ResNet layer4 of a 32-pixel crop);
    ``patients_flat_map`` counts them. ``layer``: Grad-CAM's layer and its grid (empty for occlusion)."""
    rows = []
    for (model, fold, method), part in patients.groupby(["model", "fold", "method"], sort=False):
        rho = float(part["random_spearman"].median())
        layers = part["layer"].fillna("").astype(str)
        rows.append({"model": model, "fold": fold, "method": method, "layer": "; ".join(layers[layers != ""].unique()),
                     "n_patients": len(part),
                     "tumor_share": float(part["tumor_share"].median()),
                     "tumor_area_share": float(part["tumor_area_share"].median()),
                     "tumor_enrichment": float((part["tumor_share"] / part["tumor_area_share"]).median()),
                     "patients_tumor_above_area": int((part["tumor_share"] > part["tumor_area_share"]).sum()),
                     "patients_flat_map": int(part["flat_map"].astype(bool).sum()),
                     "brain_share": float(part["brain_share"].median()),
                     "brain_area_share": float(part["brain_area_share"].median()),
                     "random_spearman": rho, "weights_independent": bool(rho >= max_random_spearman),
                     "seconds_per_patient": float(part["seconds"].median())})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def explain_test_patients(checkpoint: Path, crops: dict[str, Path], splits: pd.DataFrame, *, model_name: str,
                          fold: int, crop: dict, settings: dict, seed: int, out_dir: Path,
                          threads: int = 1) -> pd.DataFrame:
    """Rule explanation_maps: the fold's test patients' maps under ``out_dir`` and their per-patient
    table. ``seed``: the run's training seed (cv.seed); the random model is drawn with seed + fold,
    as train_fold draws the weights it starts from."""
    from oncoflow.explain.outputs import write_subject_maps
    from oncoflow.train.kernels import use_cpu_kernels

    torch.set_num_threads(threads)
    use_cpu_kernels()
    rows = splits[(splits["fold"] == fold) & (splits["role"] == "test")]
    missing = [s for s in rows["subject"] if s not in crops]
    if missing:
        raise KeyError(f"{model_name} fold {fold}: no crop for test patients {missing}")
    rows = cropped_patients(rows.set_index("subject"), crops, f"{model_name} fold {fold} maps")  # as train_fold
    test = {s: crops[s] for s in rows.index}
    fold_model = load_fold_model(checkpoint)
    table, maps, samples = explain_fold(fold_model, test, crop, model_name=model_name, fold=fold,
                                        seed=seed + fold, methods=tuple(settings["methods"]))
    write_subject_maps(samples, maps, test, architecture=fold_model.architecture,
                       dims=spatial_dims(fold_model.architecture), slices=int(crop["slices"]),
                       modality=fold_model.modalities[0], out_dir=out_dir, title=f"{model_name} fold {fold}")
    return table
