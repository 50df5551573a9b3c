"""A co-trained CNN model's own tumor mask of each new subject (rule new_subject_tumor_masks).

A model trained with ``cotrain_segmentation: true`` has a segmentation head beside its classifier
(oncoflow.models.segmentation.CoTrainNet; the bundle records which models have one). predict applies
the model as the mean of its fold models' probabilities; its mask likewise: per subject, the mean over
the fold models (an inner ensemble: over its members) of the head's tumor probability (the sigmoid of
its logits) on the model's input, put on the crop grid as the explanation maps are
(oncoflow.explain.outputs.crop_grid_map: a 2D model's probability on the slices it read, the crop's
other slices 0; 3D resampled over the crop's slices) and thresholded at 0.5:
``<model>/<subject>.nii.gz`` where the crop lies. On the grid of the image the crop was taken from, the
mean probability is resampled (trilinear, 0 outside the crop) and then thresholded at 0.5:
``<model>/reference/<subject>.nii.gz``. A subject scored fold by fold from predicted-mask crops gets
each fold's mask on its crop (``<model>/fold<k>/``) and, on the reference grid, the mean of the fold
models' resampled probabilities thresholded at 0.5. A pretrained brain encoder has no segmentation
head. Only subjects predict scored get a mask; tumor_masks.tsv lists every subject and co-trained
model (the unscored ones with predict's reason) and the mask's volume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from oncoflow.atomic import atomic_write
from oncoflow.predict.manifest import cotrained_models, load_manifest

#: Tumor probability from which a voxel is in the mask.
MASK_THRESHOLD = 0.5
MASK_COLUMNS = ["subject", "model", "status", "folds", "crop_mask", "reference_mask", "volume_ml"]


def tumor_probability(model: Any, x: np.ndarray, batch: int = 8) -> np.ndarray:
    """The segmentation head's tumor probability (n, *spatial) of ``x``; an inner ensemble's: the
    mean of its members'."""
    import torch

    from oncoflow.models.ensemble import members

    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.from_numpy(x[start : start + batch])
            probs = [torch.sigmoid(net.forward_with_segmentation(xb)[1].float())[:, 0] for net in members(model)]
            out.append(torch.stack(probs).mean(0).numpy())
    return np.concatenate(out).astype(np.float32)


def _save(img: nib.Nifti1Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        nib.save(img, str(tmp))


def write_model_masks(name: str, folds: list[int], bundle: Path, subjects: list[str], crops: dict[str, Path],
                      fold_crops: dict[int, dict[str, Path]], crop: dict[str, Any], out_dir: Path) -> list[dict[str, Any]]:
    """One co-trained model's masks of ``subjects`` (scored by predict) under ``out_dir/<model>``;
    their tumor_masks.tsv rows."""
    from oncoflow.explain.outputs import REFERENCE_FOLDER, crop_grid_map, reference_grid_map, write_map
    from oncoflow.explain.sanity import load_fold_model, model_samples
    from oncoflow.models.zoo import spatial_dims

    per_fold = [s for s in subjects if any(s in fold_crops.get(k, {}) for k in folds)]
    shared = {s: crops[s] for s in subjects if s not in per_fold}
    out = out_dir / name
    on_crop: dict[str, np.ndarray] = {}  # shared crops: the sum of the fold models' probabilities
    on_ref: dict[str, np.ndarray] = {}  # fold crops: the sum of their probabilities on the reference grid
    affines: dict[str, np.ndarray] = {}  # the reference grid's
    files: dict[str, str] = {}
    samples = None
    for k in folds:
        fold_model = load_fold_model(bundle / "checkpoints" / name / f"fold{k}.pt")
        arch = fold_model.architecture
        dims, slices = spatial_dims(arch), int(crop["slices"])
        if shared and samples is None:
            samples = model_samples(fold_model, shared, crop)
        parts = [(samples, shared)] if shared else []
        if per_fold:  # fold k's model on the crop of fold k's predicted mask
            mine = {s: fold_crops[k][s] for s in per_fold}
            parts.append((model_samples(fold_model, mine, crop), mine))
        for part, part_crops in parts:
            prob = tumor_probability(fold_model.model, part.x)
            for i, s in enumerate(part.subjects):
                grid = crop_grid_map(prob[part.subject_index == i], part_crops[s], arch, dims, slices)
                if s in shared:
                    on_crop[s] = on_crop.get(s, 0) + grid
                    continue
                path = out / f"fold{k}" / f"{s}.nii.gz"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_map((grid >= MASK_THRESHOLD).astype(np.float32), part_crops[s], arch, path)
                files[s] = "; ".join(filter(None, [files.get(s, ""), f"{name}/fold{k}/{s}.nii.gz"]))
                ref = reference_grid_map(grid, part_crops[s])
                on_ref[s], affines[s] = on_ref.get(s, 0) + np.asarray(ref.dataobj), ref.affine
    rows = []
    for s in subjects:
        if s in shared:
            mean = on_crop[s] / len(folds)
            out.mkdir(parents=True, exist_ok=True)
            write_map((mean >= MASK_THRESHOLD).astype(np.float32), shared[s], arch, out / f"{s}.nii.gz")
            files[s] = f"{name}/{s}.nii.gz"
            ref = reference_grid_map(mean, shared[s])
            on_ref[s], affines[s] = np.asarray(ref.dataobj) * len(folds), ref.affine
        mask = (on_ref[s] / len(folds) >= MASK_THRESHOLD).astype(np.uint8)
        _save(nib.Nifti1Image(mask, affines[s]), out / REFERENCE_FOLDER / f"{s}.nii.gz")
        rows.append({"subject": s, "model": name, "status": "written", "folds": len(folds), "crop_mask": files[s],
                     "reference_mask": f"{name}/{REFERENCE_FOLDER}/{s}.nii.gz",
                     "volume_ml": float(mask.sum() * abs(np.linalg.det(affines[s][:3, :3])) / 1000)})
    return rows


def new_subject_tumor_masks(bundle: Path, predictions: pd.DataFrame, crops: dict[str, Path],
                            fold_crops: dict[int, dict[str, Path]], crop: dict[str, Any], out_dir: Path,
                            threads: int = 1) -> pd.DataFrame:
    """Every co-trained bundled model's tumor mask of the subjects predict scored (``predictions``:
    predictions.tsv; ``crops`` and ``fold_crops`` as for the maps) under ``out_dir``, and the table
    (the subjects not scored listed with predict's reason)."""
    import torch

    from oncoflow.train.kernels import use_cpu_kernels

    torch.set_num_threads(threads)
    use_cpu_kernels()
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(bundle)
    rows: list[dict[str, Any]] = []
    for name in cotrained_models(manifest):
        preds = predictions[predictions["model"] == name]
        rows += [{"subject": r.subject, "model": name, "status": f"no mask: {r.status}"}
                 for r in preds[preds["status"] != "scored"].itertuples()]
        scored = preds.loc[preds["status"] == "scored", "subject"].tolist()
        if scored:
            rows += write_model_masks(name, [int(k) for k in manifest["models"][name]["folds"]], bundle, scored,
                                      crops, fold_crops, crop, out_dir)
    return pd.DataFrame(rows).reindex(columns=MASK_COLUMNS)
