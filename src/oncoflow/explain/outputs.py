"""Explanation maps as files: NIfTI on the crop grid and a PNG overlay per patient.

2D models: each map sits on the crop slice it explains (the slices the model read, top_slices);
the crop's other slices are 0. 3D models: the map is resampled from the model's depth back to the
crop's own slices. A pretrained brain encoder's input is its own resampled window: its map is
written on that grid (isotropic voxels of its spacing, axes in the network's order).
The NIfTI axes are the crop's (x, y, slice) with its pixel and slice size; the crop is a resampled
region of the reference image, so the origin is the crop's corner, not the scan's (mapping the map
back onto the reference image is not done yet).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import ndimage

from oncoflow.atomic import atomic_write
from oncoflow.models.catalog import INPUT_PREPARATION
from oncoflow.train.data import Samples, load_crop, top_slices

PNG_SLICES = 5  # the overlay's columns (3D: the crop slices with most tumor)


def crop_grid_map(maps: np.ndarray, crop_path: Path, architecture: str, dims: int, slices: int) -> np.ndarray:
    """One subject's map (its rows of the model input, channels dropped) on the crop grid (depth, size, size)."""
    with np.load(crop_path) as npz:
        area = npz["tumor_area"]
        depth, size = int(area.shape[0]), int(npz["tumor"].shape[-1])
    if architecture in INPUT_PREPARATION:
        return maps[0]
    out = np.zeros((depth, size, size), np.float32)
    if dims == 2:
        out[top_slices(area, slices)] = maps
    else:
        out[:] = ndimage.zoom(maps[0], (depth / maps.shape[1], 1, 1), order=1)[:depth]
    return out


def write_map(volume: np.ndarray, crop_path: Path, architecture: str, path: Path) -> None:
    """``volume`` (depth, size, size) as NIfTI (x, y, slice) with the crop's voxel size."""
    prep = INPUT_PREPARATION.get(architecture)
    if prep:
        zooms = [float(prep["spacing_mm"])] * 3
    else:
        with np.load(crop_path) as npz:
            zooms = [float(npz["pixel_mm"]), float(npz["pixel_mm"]), float(npz["slice_mm"])]
    img = nib.Nifti1Image(np.ascontiguousarray(volume.transpose(1, 2, 0)).astype(np.float32), np.diag([*zooms, 1.0]))
    with atomic_write(path) as tmp:
        nib.save(img, str(tmp))


def write_overlay(subject: str, crop_path: Path, modality: str, maps: dict[str, np.ndarray], path: Path,
                  title: str) -> None:
    """PNG: the crop's ``modality`` on the slices with most tumor (tumor outlined), then each
    method's map (on the crop grid) over it, one row per method."""
    crop = load_crop(crop_path, [modality], mask=True)
    image, tumor = crop[modality], crop["tumor"].astype(bool)
    used = [z for z in top_slices(crop["tumor_area"], PNG_SLICES) if any(m[z].any() for m in maps.values())]
    chosen = used or list(top_slices(crop["tumor_area"], PNG_SLICES))
    fig = Figure(figsize=(1.6 * len(chosen), 1.6 * (1 + len(maps))), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1 + len(maps), len(chosen), squeeze=False)
    for col, z in enumerate(chosen):
        rows = [("", None), *maps.items()]
        for row, (method, volume) in enumerate(rows):
            ax = axes[row][col]
            ax.imshow(image[z].T, cmap="gray", origin="lower")
            if volume is not None:
                top = float(volume.max()) or 1.0
                ax.imshow(volume[z].T / top, cmap="inferno", alpha=0.5, vmin=0, vmax=1, origin="lower")
            if tumor[z].any():
                ax.contour(tumor[z].T, levels=[0.5], colors="cyan", linewidths=0.6, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(method or modality, fontsize=7)
            if row == 0:
                ax.set_title(f"slice {z}", fontsize=7)
    fig.suptitle(f"{subject}: {title}", fontsize=8)
    with atomic_write(path, check=None) as tmp:
        fig.savefig(tmp, format="png")


def write_subject_maps(samples: Samples, maps: dict[str, np.ndarray], crops: dict[str, Path], *, architecture: str,
                       dims: int, slices: int, modality: str, out_dir: Path, title: str) -> list[Path]:
    """Every subject's NIfTI per method (``<subject>_<method>.nii.gz``) and its PNG (``<subject>.png``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, subject in enumerate(samples.subjects):
        rows = samples.subject_index == i
        on_grid = {}
        for method, m in maps.items():
            on_grid[method] = crop_grid_map(m[rows], crops[subject], architecture, dims, slices)
            path = out_dir / f"{subject}_{method}.nii.gz"
            write_map(on_grid[method], crops[subject], architecture, path)
            written.append(path)
        if architecture not in INPUT_PREPARATION:  # an encoder's window is not the crop's grid
            write_overlay(subject, crops[subject], modality, on_grid, out_dir / f"{subject}.png", title)
            written.append(out_dir / f"{subject}.png")
    return written
