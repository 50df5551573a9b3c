"""Explanation maps as files: NIfTI on the crop grid and a PNG overlay per patient.

2D models: each map sits on the crop slice it explains (the slices the model read, top_slices);
the crop's other slices are 0. 3D models: the map is resampled from the model's depth back to the
crop's own slices. A pretrained brain encoder's input is its own resampled window: its map is
written on that grid (isotropic voxels of its spacing, axes in the network's order).
The NIfTI axes are the crop's (x, y, slice) with its pixel and slice size, placed in world mm where
the crop lies (the crop's ``crop_affine``). The crop is a resampled region of the image it was taken
from (the reference grid): each crop-grid map is also resampled (trilinear) onto that image's own
grid, shape and affine (``reference/<subject>_<method>.nii.gz``, zero outside the crop), so that it
opens over the patient's scan in any viewer. An encoder's window is not the crop grid: no reference map.
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
REFERENCE_FOLDER = "reference"  # beside the crop-grid maps: the maps on the reference image's grid


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


def _crop_grid(crop_path: Path) -> dict[str, np.ndarray]:
    """The crop's place in its reference image (oncoflow.crop.tumor_crop)."""
    with np.load(crop_path) as npz:
        missing = [k for k in ("crop_affine", "reference_affine", "reference_shape") if k not in npz.files]
        if missing:
            raise ValueError(f"{crop_path}: the crop does not record where it lies in its reference image (no "
                             f"{', '.join(missing)}: made by an older oncoflow); rerun its rule crop_tumor")
        return {k: npz[k] for k in ("crop_affine", "reference_affine", "reference_shape")}


def write_map(volume: np.ndarray, crop_path: Path, architecture: str, path: Path) -> None:
    """``volume`` (depth, size, size) as NIfTI (x, y, slice) with the crop's voxel size, placed
    where the crop lies (an encoder's window: its isotropic voxels, origin at its corner)."""
    prep = INPUT_PREPARATION.get(architecture)
    affine = np.diag([float(prep["spacing_mm"])] * 3 + [1.0]) if prep else _crop_grid(crop_path)["crop_affine"]
    img = nib.Nifti1Image(np.ascontiguousarray(volume.transpose(1, 2, 0)).astype(np.float32), affine)
    with atomic_write(path) as tmp:
        nib.save(img, str(tmp))


def reference_grid_map(volume: np.ndarray, crop_path: Path) -> nib.Nifti1Image:
    """``volume`` (depth, size, size, on the crop grid) on the grid of the image the crop was taken
    from: each reference voxel whose centre lies inside the crop's voxels takes the map's trilinear
    value there, every other voxel 0."""
    grid = _crop_grid(crop_path)
    data = np.ascontiguousarray(volume.transpose(1, 2, 0), dtype=np.float32)  # (x, y, slice)
    shape = tuple(int(n) for n in grid["reference_shape"])
    to_crop = np.linalg.inv(grid["crop_affine"]) @ grid["reference_affine"]  # reference voxel -> crop voxel
    # the crop's box in reference voxels (its corners), so only the voxels near it are sampled
    corners = np.array(np.meshgrid(*[(-0.5, n - 0.5) for n in data.shape], indexing="ij")).reshape(3, -1)
    corners_ref = np.linalg.inv(to_crop) @ np.vstack([corners, np.ones(corners.shape[1])])
    low = np.clip(np.floor(corners_ref[:3].min(axis=1)).astype(int), 0, shape)
    high = np.clip(np.ceil(corners_ref[:3].max(axis=1)).astype(int) + 1, 0, shape)
    out = np.zeros(shape, np.float32)
    box = np.indices(tuple(high - low)).reshape(3, -1) + low[:, None]
    coords = to_crop[:3, :3] @ box + to_crop[:3, 3:]
    inside = np.all((coords >= -0.5) & (coords <= np.array(data.shape)[:, None] - 0.5), axis=0)
    values = ndimage.map_coordinates(data, coords[:, inside], order=1, mode="nearest")
    out[tuple(box[:, inside])] = values
    return nib.Nifti1Image(out, grid["reference_affine"])


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
    """Every subject's NIfTI per method on the crop grid (``<subject>_<method>.nii.gz``) and on its
    reference grid (``reference/<subject>_<method>.nii.gz``), and its PNG (``<subject>.png``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    on_crop = architecture not in INPUT_PREPARATION  # an encoder's window is not the crop's grid
    if on_crop:
        (out_dir / REFERENCE_FOLDER).mkdir(exist_ok=True)
    written = []
    for i, subject in enumerate(samples.subjects):
        rows = samples.subject_index == i
        on_grid = {}
        for method, m in maps.items():
            on_grid[method] = crop_grid_map(m[rows], crops[subject], architecture, dims, slices)
            path = out_dir / f"{subject}_{method}.nii.gz"
            write_map(on_grid[method], crops[subject], architecture, path)
            written.append(path)
            if on_crop:
                path = out_dir / REFERENCE_FOLDER / f"{subject}_{method}.nii.gz"
                with atomic_write(path) as tmp:
                    nib.save(reference_grid_map(on_grid[method], crops[subject]), str(tmp))
                written.append(path)
        if on_crop:
            write_overlay(subject, crops[subject], modality, on_grid, out_dir / f"{subject}.png", title)
            written.append(out_dir / f"{subject}.png")
    return written
