"""Tumor-centred (or whole-brain) crops cached as arrays, so training never re-reads NIfTI files.

Region ``tumor``: the crop keeps the native slices (axial after canonical reorientation) that hold
tumor plus a margin, and resamples each slice in-plane onto a square grid around the tumor.
Region ``brain``: the same, around the brain mask's bounding box (whole-brain models; the tumor
mask is still carried for co-training and slice choice). 2D models take the k slices with the most
tumor; 3D models resample the depth to a fixed size (see oncoflow.train.data).

Field of view: by default the in-plane field spans the region's bounding box + margin (at least
``min_fov_mm``), so the pixel size follows the tumor and tumor size is normalised away in the image.
``field_of_view_mm`` fixes it instead: every crop covers the same physical square (pixel size
field_of_view_mm / size for every patient), so a larger tumor fills more of the crop.

Where the crop lies: ``crop_affine`` maps a crop voxel (x, y, slice) = (array axes 1, 2, 0) to
world mm, and ``reference_affine`` / ``reference_shape`` are the grid of the image it was taken
from as stored on disk (the brain mask's; every cropped image shares it), so that anything made on
the crop grid (explanation maps) can be put back onto that image (oncoflow.explain.outputs).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from oncoflow.atomic import atomic_write


#: the one key of a crop file written in place of a crop: why the subject was not cropped (a
#: cross-fitted predicted tumor mask that was empty or implausible; segment.crop_mask)
NOT_CROPPED = "not_cropped"
#: how that reason, and crop.tsv's ``status`` of such a subject, begins (read by the participant flow)
NOT_CROPPED_STATUS = "not cropped"


class CropError(RuntimeError):
    def __init__(self, subject: str, path: object, reason: str) -> None:
        super().__init__(f"[{subject}] {path}: {reason}")


@dataclass(frozen=True)
class CropSpec:
    size: int = 64  # in-plane pixels
    margin_mm: float = 10.0
    min_fov_mm: float = 40.0  # small tumors still get context
    min_brain_overlap: float = 0.5  # fraction of the tumor that must lie inside the brain mask
    region: str = "tumor"  # or "brain": the field of view is the brain mask's bounding box
    field_of_view_mm: float | None = None  # fixed in-plane field (mm); None: bounding box + margin

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ValueError(f"crop region {self.region!r}: expected one of {', '.join(REGIONS)}")
        if self.field_of_view_mm is not None and self.field_of_view_mm <= 0:
            raise ValueError(f"crop field_of_view_mm {self.field_of_view_mm}: expected a positive size in mm")

    def field_mm(self, extent_mm: float) -> float:
        """In-plane field of view for a region of ``extent_mm`` (the larger in-plane side)."""
        if self.field_of_view_mm is not None:
            return float(self.field_of_view_mm)
        return max(extent_mm + 2 * self.margin_mm, self.min_fov_mm)


REGIONS = ("tumor", "brain")


def load_canonical(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data, zooms, _ = _load(path)
    return data, zooms


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical (RAS+) data, voxel size and affine."""
    img = nib.as_closest_canonical(nib.load(path))
    return np.asarray(img.get_fdata(), dtype=np.float32), np.asarray(img.header.get_zooms()[:3]), img.affine


def _grid_mismatch(what: str, shape: tuple[int, ...], affine: np.ndarray, brain_shape: tuple[int, ...],
                   brain_affine: np.ndarray) -> str | None:
    """Why a grid differs from the brain mask's (shape, or voxel-to-mm mapping beyond 1e-3 mm)."""
    if shape != brain_shape:
        return f"{what} grid {shape} != brain grid {brain_shape}"
    if not np.allclose(affine, brain_affine, atol=1e-3):
        return (f"{what} grid has the brain mask's shape {shape} but another voxel-to-mm mapping "
                f"(affine {np.round(affine[:3], 2).tolist()} vs {np.round(brain_affine[:3], 2).tolist()})")
    return None


def normalise_in_brain(arr: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Z-score on the subject's own brain voxels; zero outside the brain. Nothing is fitted
    across patients, so this cannot leak between folds."""
    values = arr[brain]
    mean, std = float(values.mean()), float(values.std())
    out = np.zeros_like(arr)
    out[brain] = (arr[brain] - mean) / max(std, 1e-6)
    return out


def crop_subject(
    subject: str,
    images: dict[str, Path],
    brain_mask: Path,
    tumor_mask: Path | None,
    out: Path,
    spec: CropSpec = CropSpec(),
    *,
    tumor_mask_source: Path | None = None,
) -> dict[str, float]:
    """``tumor_mask_source``: the sample sheet's mask that ``tumor_mask`` was carried from, named in
    errors about the tumor mask (the file a user has to fix). ``tumor_mask`` None (a subject
    without tumor, e.g. a normal head for pretraining): only with region brain; the crop's tumor
    arrays are then all zero."""
    source = f" (the sample sheet's tumor mask {tumor_mask_source} on the reference grid)" if tumor_mask_source else ""
    brain, brain_zooms, brain_affine = _load(brain_mask)
    brain = brain > 0.5
    if tumor_mask is None:
        if spec.region != "brain":
            raise CropError(subject, brain_mask, "no tumor mask: only a whole-brain crop (region "
                            "brain) can be made without one")
        tumor, zooms = np.zeros_like(brain), brain_zooms
    else:
        tumor, zooms, tumor_affine = _load(tumor_mask)
        tumor = tumor > 0.5
        mismatch = _grid_mismatch("tumor mask", tumor.shape, tumor_affine, brain.shape, brain_affine)
        if mismatch:
            raise CropError(subject, tumor_mask, mismatch + source)
        if not tumor.any():
            raise CropError(subject, tumor_mask, "tumor mask is empty" + source)
    overlap = float((tumor & brain).sum() / tumor.sum()) if tumor.any() else float("nan")
    if overlap < spec.min_brain_overlap:
        raise CropError(subject, tumor_mask, f"only {overlap:.0%} of the tumor lies inside the brain "
                        f"mask{source}: wrong mask, wrong space, or failed brain extraction (see qc/{subject}.png)")
    if spec.region == "brain" and not brain.any():
        raise CropError(subject, brain_mask, f"brain mask is empty (see qc/{subject}.png)")
    xs, ys, zs = np.nonzero(tumor if spec.region == "tumor" else brain)
    centre = np.array([(xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2])
    extent_mm = max((xs.max() - xs.min() + 1) * zooms[0], (ys.max() - ys.min() + 1) * zooms[1])
    fov_mm = spec.field_mm(extent_mm)
    margin_slices = int(np.ceil(spec.margin_mm / zooms[2]))
    z0, z1 = max(zs.min() - margin_slices, 0), min(zs.max() + margin_slices, tumor.shape[2] - 1)
    # In-plane sampling grid (voxel coordinates) of a square fov_mm field centred on the tumor.
    offsets = (np.arange(spec.size) + 0.5) / spec.size * fov_mm - fov_mm / 2
    gx = centre[0] + offsets / zooms[0]
    gy = centre[1] + offsets / zooms[1]
    grid_x, grid_y = np.meshgrid(gx, gy, indexing="ij")
    # crop voxel (x, y, slice) -> canonical voxel (gx[x], gy[y], z0 + slice) -> world mm
    step = fov_mm / spec.size / np.asarray(zooms[:2], dtype=float)
    to_canonical = np.diag([*step, 1.0, 1.0])
    to_canonical[:3, 3] = [gx[0], gy[0], z0]
    stored = nib.load(brain_mask)

    def sample(volume: np.ndarray, order: int) -> np.ndarray:
        slices = [
            ndimage.map_coordinates(volume[:, :, z], [grid_x, grid_y], order=order, mode="constant")
            for z in range(z0, z1 + 1)
        ]
        return np.stack(slices, axis=0).astype(np.float32)  # (depth, size, size)

    arrays: dict[str, np.ndarray] = {}
    for modality, path in images.items():
        arr, _, affine = _load(path)
        mismatch = _grid_mismatch(modality, arr.shape, affine, brain.shape, brain_affine)
        if mismatch:
            raise CropError(subject, path, mismatch)
        arrays[f"image_{modality}"] = sample(normalise_in_brain(arr, brain), order=1)
    tumor_crop = sample(tumor.astype(np.float32), order=0) > 0.5
    bad = [name for name, values in arrays.items() if not np.isfinite(values).all()]
    if bad:
        raise CropError(subject, out, f"non-finite intensities in {', '.join(bad)} after normalisation "
                        "(check that image's scaling)")
    with atomic_write(out) as tmp:
        np.savez_compressed(
            tmp,
            **arrays,
            tumor=tumor_crop.astype(np.uint8),
            tumor_area=tumor_crop.sum(axis=(1, 2)).astype(np.int32),
            pixel_mm=np.float32(fov_mm / spec.size),
            slice_mm=np.float32(zooms[2]),
            crop_affine=brain_affine @ to_canonical,
            reference_affine=stored.affine,
            reference_shape=np.asarray(stored.shape[:3], dtype=np.int32),
        )
    return {"tumor_ml": float(tumor.sum() * np.prod(zooms) / 1000), "brain_overlap": overlap,
            "fov_mm": float(fov_mm), "extent_mm": float(extent_mm), "depth": float(z1 - z0 + 1)}


def write_not_cropped(out: Path, reason: str) -> None:
    """A crop file that holds only why there is no crop: consumers skip the subject with the reason
    (training, maps) or refuse it (:func:`oncoflow.train.data.load_crop`), never crop at random."""
    with atomic_write(out) as tmp:
        np.savez_compressed(tmp, **{NOT_CROPPED: np.array(reason)})


def not_cropped_reason(path: Path) -> str:
    """'' for a crop; for a file written by :func:`write_not_cropped`, its reason."""
    with np.load(path) as npz:
        return str(npz[NOT_CROPPED]) if NOT_CROPPED in npz.files else ""


def cropped_patients(rows: pd.DataFrame, crops: dict[str, Path], what: str) -> pd.DataFrame:
    """``rows`` (indexed by subject) without the patients that have no crop: a cross-fitted
    predicted tumor mask that was empty or implausible is not cropped (rule crop_tumor), so the
    patient neither trains nor is scored; each is named here, the participant flow counts them."""
    left_out = {s: reason for s in rows.index if s in crops and (reason := not_cropped_reason(crops[s]))}
    for subject, reason in left_out.items():
        print(f"WARNING {what}: {subject} ({rows.at[subject, 'role']}) left out: {reason}", file=sys.stderr, flush=True)
    return rows.drop(index=list(left_out))
