"""Tensors from cached tumor crops: 2D slices or 3D volumes, one channel per input modality, and
optionally the crop's tumor mask on the same grid (co-training, pretraining)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage


@dataclass
class Samples:
    x: np.ndarray  # (n, channels, [depth,] size, size) float32
    subject_index: np.ndarray  # (n,) row -> position in ``subjects``
    subjects: list[str]
    mask: np.ndarray | None = None  # (n, 1, [depth,] size, size) uint8 tumor mask, when asked for


def load_crop(path: Path, modalities: list[str], *, mask: bool = False) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        missing = [m for m in modalities if f"image_{m}" not in npz]
        if missing:
            raise KeyError(f"{path} has no crop for {missing}")
        out = {m: npz[f"image_{m}"] for m in modalities}
        out["tumor_area"] = npz["tumor_area"]
        if mask:
            out["tumor"] = npz["tumor"]
    return out


def top_slices(tumor_area: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k slices with most tumor (all tumor slices if fewer), in slice order."""
    order = np.argsort(-tumor_area, kind="stable")
    keep = order[: min(k, int((tumor_area > 0).sum()) or 1)]
    return np.sort(keep)


def resize_depth(volume: np.ndarray, depth: int) -> np.ndarray:
    return ndimage.zoom(volume, (depth / volume.shape[0], 1, 1), order=1)


def build_samples(
    crops: dict[str, Path], modalities: list[str], *, dims: int, slices: int, depth: int,
    masks: bool = False, all_slices: bool = False,
) -> Samples:
    """2D: the ``slices`` largest tumor slices per subject (every slice of the crop with
    ``all_slices``); 3D: the crop resized to ``depth``. ``masks`` adds the tumor mask of each row."""
    xs, idx, ms = [], [], []
    subjects = list(crops)
    for i, subject in enumerate(subjects):
        crop = load_crop(crops[subject], modalities, mask=masks)
        stack = np.stack([crop[m] for m in modalities], axis=0)  # (C, D, H, W)
        if dims == 2:
            chosen = np.arange(stack.shape[1]) if all_slices else top_slices(crop["tumor_area"], slices)
            xs.append(np.moveaxis(stack[:, chosen], 1, 0))  # (k, C, H, W)
            idx.extend([i] * len(chosen))
            if masks:
                ms.append(crop["tumor"][chosen][:, None])
        else:
            xs.append(np.stack([resize_depth(c, depth) for c in stack])[None])
            idx.append(i)
            if masks:  # same linear resampling as the images, then back to 0/1
                ms.append((resize_depth(crop["tumor"].astype(np.float32), depth) >= 0.5)[None, None])
    mask = np.concatenate(ms).astype(np.uint8) if masks else None
    return Samples(np.concatenate(xs).astype(np.float32), np.asarray(idx), subjects, mask)
