"""Tensors from cached tumor crops: 2D slices or 3D volumes, one channel per input modality, and
optionally the crop's tumor mask on the same grid (co-training, pretraining)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from oncoflow.crop.tumor_crop import NOT_CROPPED


@dataclass
class Samples:
    x: np.ndarray  # (n, channels, [depth,] size, size) float32
    subject_index: np.ndarray  # (n,) row -> position in ``subjects``
    subjects: list[str]
    mask: np.ndarray | None = None  # (n, 1, [depth,] size, size) uint8 tumor mask, when asked for


def load_crop(path: Path, modalities: list[str], *, mask: bool = False) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        if NOT_CROPPED in npz.files:  # callers leave such subjects out first (oncoflow.train.loop)
            raise ValueError(f"{path}: {npz[NOT_CROPPED]}")
        missing = [m for m in modalities if f"image_{m}" not in npz]
        if missing:
            raise KeyError(f"{path} has no crop for {missing}")
        out = {m: npz[f"image_{m}"] for m in modalities}
        out["tumor_area"] = npz["tumor_area"]
        if mask:
            out["tumor"] = npz["tumor"]
            out["voxel_mm"] = np.array([npz["slice_mm"], npz["pixel_mm"], npz["pixel_mm"]], dtype=float)
    return out


def _centre_window(n: int, centre: float, size: int) -> tuple[slice, slice]:
    """(source, target) slices of a ``size`` window centred on ``centre`` of an axis of ``n``
    voxels, zero-padded where the axis is shorter."""
    start = int(round(centre - size / 2))
    lo, hi = max(start, 0), min(start + size, n)
    return slice(lo, hi), slice(lo - start, hi - start)


def prepare_volume(stack: np.ndarray, tumor: np.ndarray, voxel_mm: np.ndarray, preparation: dict,
                   grid: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A crop (C, D, H, W) and its tumor mask as a pretrained brain network expects them
    (oncoflow.models.catalog.INPUT_PREPARATION): resampled to its isotropic spacing, a ``grid``
    window centred on the tumor (zero-padded), its intensity normalisation per channel over the
    whole window, then its axis order. Returns (image (C, *grid'), mask (1, *grid'))."""
    factors = np.asarray(voxel_mm, dtype=float) / float(preparation["spacing_mm"])
    image = np.stack([ndimage.zoom(c, factors, order=1) for c in stack])
    mask = ndimage.zoom(tumor.astype(np.float32), factors, order=1) >= 0.5
    points = np.argwhere(mask) if mask.any() else np.argwhere(np.ones_like(mask))
    centre = (points.min(0) + points.max(0) + 1) / 2
    windows = [_centre_window(n, c, g) for n, c, g in zip(mask.shape, centre, grid)]
    src = tuple(w[0] for w in windows)
    dst = tuple(w[1] for w in windows)
    out = np.zeros((len(image), *grid), np.float32)
    out[(slice(None), *dst)] = image[(slice(None), *src)]
    out_mask = np.zeros(grid, np.uint8)
    out_mask[dst] = mask[src]
    for c in range(len(out)):
        out[c] = normalise_intensity(out[c], str(preparation["intensity"]))
    axes = [int(a) for a in preparation["axes"]]
    out = np.ascontiguousarray(out.transpose(0, *(a + 1 for a in axes)))
    return out, np.ascontiguousarray(out_mask.transpose(axes))[None]


def normalise_intensity(x: np.ndarray, method: str) -> np.ndarray:
    """``zscore``: mean 0, SD 1 over the volume (HD-BET); ``deepbet``: deepbet.utils.normalize
    (clip to the 0.5-99.5 percentiles, scale to 0-1, z-score, then x 0.226 + 0.449)."""
    if method == "deepbet":
        low, high = np.quantile(x, [0.005, 0.995])
        x = np.clip((x - low) / max(high - low, 1e-6), 0.0, 1.0)
    elif method != "zscore":
        raise ValueError(f"unknown intensity normalisation {method!r}")
    x = (x - x.mean()) / max(float(x.std()), 1e-6)
    return (0.226 * x + 0.449 if method == "deepbet" else x).astype(np.float32)


def top_slices(tumor_area: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k slices with most tumor (all tumor slices if fewer), in slice order."""
    order = np.argsort(-tumor_area, kind="stable")
    keep = order[: min(k, int((tumor_area > 0).sum()) or 1)]
    return np.sort(keep)


def resize_depth(volume: np.ndarray, depth: int) -> np.ndarray:
    return ndimage.zoom(volume, (depth / volume.shape[0], 1, 1), order=1)


def build_samples(
    crops: dict[str, Path], modalities: list[str], *, dims: int, slices: int, depth: int,
    masks: bool = False, all_slices: bool = False, preparation: dict | None = None,
) -> Samples:
    """2D: the ``slices`` largest tumor slices per subject (every slice of the crop with
    ``all_slices``); 3D: the crop resized to ``depth``, or with ``preparation`` (a pretrained
    brain network's input, :func:`prepare_volume`) a ``depth`` x size x size window at its spacing.
    ``masks`` adds the tumor mask of each row."""
    xs, idx, ms = [], [], []
    subjects = list(crops)
    for i, subject in enumerate(subjects):
        crop = load_crop(crops[subject], modalities, mask=masks or preparation is not None)
        stack = np.stack([crop[m] for m in modalities], axis=0)  # (C, D, H, W)
        if preparation is not None:
            x, m = prepare_volume(stack, crop["tumor"], crop["voxel_mm"], preparation,
                                  (depth, stack.shape[2], stack.shape[3]))
            xs.append(x[None])
            idx.append(i)
            if masks:
                ms.append(m[None])
        elif dims == 2:
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
