"""A subject's volumes as the segmenter's slices, and its predictions back onto the reference grid.

Every axial slice (canonical RAS+ orientation) that holds brain is resampled in-plane onto a
``size`` x ``size`` grid spanning the brain's bounding box (square, + margin), each modality
z-scored on the subject's own brain voxels (nothing fitted across patients). A prediction on those
slices is mapped back by the inverse of the same sampling, zeroed outside the brain and written on
the brain mask's own grid (its orientation and affine), so crops read it like a manual mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from oncoflow.atomic import atomic_write
from oncoflow.crop.tumor_crop import normalise_in_brain


class SegmentError(RuntimeError):
    def __init__(self, subject: str, path: object, reason: str) -> None:
        super().__init__(f"[{subject}] {path}: {reason}")


@dataclass(frozen=True)
class SliceGrid:
    """Where a subject's network slices lie in its canonical volume."""

    shape: tuple[int, int, int]  # canonical volume shape
    zooms: tuple[float, float, float]
    centre: tuple[float, float]  # in-plane centre (voxels)
    fov_mm: float
    z0: int
    z1: int  # inclusive
    size: int

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """In-plane voxel coordinates of the size x size sampling grid."""
        offsets = (np.arange(self.size) + 0.5) / self.size * self.fov_mm - self.fov_mm / 2
        gx = self.centre[0] + offsets / self.zooms[0]
        gy = self.centre[1] + offsets / self.zooms[1]
        return np.meshgrid(gx, gy, indexing="ij")

    def inverse_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Fractional grid indices of every in-plane voxel of the volume (for mapping back)."""
        x = (np.arange(self.shape[0]) - self.centre[0]) * self.zooms[0]
        y = (np.arange(self.shape[1]) - self.centre[1]) * self.zooms[1]
        ix = (x + self.fov_mm / 2) / self.fov_mm * self.size - 0.5
        iy = (y + self.fov_mm / 2) / self.fov_mm * self.size - 0.5
        return np.meshgrid(ix, iy, indexing="ij")


@dataclass(frozen=True)
class SubjectSlices:
    images: np.ndarray  # (depth, channels, size, size) float32
    tumor: np.ndarray | None  # (depth, size, size) uint8, None without a manual mask
    grid: SliceGrid


def _canonical(path: Path) -> nib.Nifti1Image:
    return nib.as_closest_canonical(nib.load(path))


def _same_grid(subject: str, path: Path, img: nib.Nifti1Image, ref: nib.Nifti1Image) -> None:
    if img.shape[:3] != ref.shape[:3] or not np.allclose(img.affine, ref.affine, atol=1e-3):
        raise SegmentError(subject, path, f"grid {img.shape[:3]} differs from the brain mask's "
                           f"{ref.shape[:3]} (shape or voxel-to-mm mapping)")


def load_slices(subject: str, images: dict[str, Path], brain_mask: Path, tumor_mask: Path | None,
                size: int, margin_mm: float) -> SubjectSlices:
    """The subject's brain slices, modalities as channels in the order of ``images``."""
    brain_img = _canonical(brain_mask)
    brain = np.asarray(brain_img.dataobj) > 0.5
    if not brain.any():
        raise SegmentError(subject, brain_mask, "brain mask is empty")
    zooms = tuple(float(z) for z in brain_img.header.get_zooms()[:3])
    xs, ys, zs = np.nonzero(brain)
    extent = max((xs.max() - xs.min() + 1) * zooms[0], (ys.max() - ys.min() + 1) * zooms[1])
    grid = SliceGrid(shape=brain.shape, zooms=zooms, centre=((xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2),
                     fov_mm=float(extent + 2 * margin_mm), z0=int(zs.min()), z1=int(zs.max()), size=size)
    gx, gy = grid.coords()

    def sample(volume: np.ndarray, order: int) -> np.ndarray:
        return np.stack([ndimage.map_coordinates(volume[:, :, z], [gx, gy], order=order, mode="constant")
                         for z in range(grid.z0, grid.z1 + 1)]).astype(np.float32)

    channels = []
    for path in images.values():
        img = _canonical(path)
        _same_grid(subject, path, img, brain_img)
        channels.append(sample(normalise_in_brain(np.asarray(img.get_fdata(), np.float32), brain), order=1))
    tumor = None
    if tumor_mask is not None:
        mask_img = _canonical(tumor_mask)
        _same_grid(subject, tumor_mask, mask_img, brain_img)
        tumor = (sample((np.asarray(mask_img.dataobj) > 0.5).astype(np.float32), order=1) > 0.5).astype(np.uint8)
    return SubjectSlices(images=np.stack(channels, axis=1), tumor=tumor, grid=grid)


def to_volume(probability: np.ndarray, grid: SliceGrid) -> np.ndarray:
    """(depth, size, size) slice probabilities -> the canonical volume (zero outside the slices)."""
    ix, iy = grid.inverse_coords()
    out = np.zeros(grid.shape, np.float32)
    for k, z in enumerate(range(grid.z0, grid.z1 + 1)):
        out[:, :, z] = ndimage.map_coordinates(probability[k], [ix, iy], order=1, mode="constant")
    return out


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component (stray false-positive voxels dropped)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return mask
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    return labels == (int(np.argmax(sizes)) + 1)


def write_mask(mask: np.ndarray, brain_mask: Path, out: Path) -> None:
    """A canonical-orientation mask written on the brain mask's own grid (orientation, affine)."""
    original = nib.load(brain_mask)
    canonical = nib.as_closest_canonical(original)
    img = nib.Nifti1Image(mask.astype(np.uint8), canonical.affine)
    img = img.as_reoriented(nib.orientations.io_orientation(original.affine))
    img = nib.Nifti1Image(np.asarray(img.dataobj).astype(np.uint8), original.affine)
    img.set_qform(original.affine, code=1)
    img.set_sform(original.affine, code=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        nib.save(img, tmp)
