"""Helpers for the model / fold / training tests: small tumor-crop files in the format that
``oncoflow.crop.tumor_crop.crop_subject`` writes, and synthetic sample sheets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_crop(path: Path, images: dict[str, np.ndarray], tumor: np.ndarray,
               pixel_mm: float = 1.0, slice_mm: float = 3.0) -> Path:
    """Save a crop as crop_subject does: image_<modality> (depth, size, size) float32, tumor
    uint8, tumor_area int32 per slice, pixel_mm and slice_mm scalars."""
    tumor = np.asarray(tumor, dtype=bool)
    for m, img in images.items():
        assert img.shape == tumor.shape, (m, img.shape, tumor.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        **{f"image_{m}": np.asarray(img, dtype=np.float32) for m, img in images.items()},
        tumor=tumor.astype(np.uint8),
        tumor_area=tumor.sum(axis=(1, 2)).astype(np.int32),
        pixel_mm=np.float32(pixel_mm),
        slice_mm=np.float32(slice_mm),
    )
    return path


def disk(size: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def tumor_stack(size: int, depth: int, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """A tumor that grows and shrinks over the slices (so the slices differ in tumor area),
    no tumor on the first and last slice. Returns the mask and per-slice (centre, radius)."""
    centre = (size / 2 + rng.uniform(-2, 2), size / 2 + rng.uniform(-2, 2))
    peak = rng.uniform(0.22, 0.3) * size
    tumor = np.zeros((depth, size, size), dtype=bool)
    geometry = []
    for z in range(1, depth - 1):
        radius = peak * (1 - 0.5 * abs(z - (depth - 1) / 2) / ((depth - 1) / 2))
        tumor[z] = disk(size, centre, radius)
        geometry.append((z, centre, radius))
    return tumor, geometry


def synthetic_crop(path: Path, label: int, rng: np.random.Generator, *, size: int = 32,
                   depth: int = 6, modalities: tuple[str, ...] = ("t1c",)) -> Path:
    """Class 1: the tumor is a bright ring (enhancing rim) around a dark core; class 0: a
    uniformly dark tumor. Noise and a per-subject intensity offset on top."""
    tumor, geometry = tumor_stack(size, depth, rng)
    images = {}
    for m in modalities:
        img = rng.normal(0.0, 0.5, size=(depth, size, size)) + rng.normal(0.0, 0.3)
        for z, centre, radius in geometry:
            inside = disk(size, centre, radius)
            if label:
                core = disk(size, centre, max(radius - 2.5, 0.0))
                img[z][inside & ~core] += 2.5
                img[z][core] -= 1.0
            else:
                img[z][inside] -= 1.0
        images[m] = img
    return write_crop(path, images, tumor)


def synthetic_cohort(root: Path, labels: list[int], *, seed: int = 0, size: int = 32,
                     depth: int = 6, modalities: tuple[str, ...] = ("t1c",),
                     cohorts: list[str] | None = None) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Sample sheet (subject, cohort, label) and crop paths for subjects s000, s001, ..."""
    rng = np.random.default_rng(seed)
    subjects = [f"s{i:03d}" for i in range(len(labels))]
    crops = {s: synthetic_crop(root / f"{s}.npz", y, rng, size=size, depth=depth,
                               modalities=modalities) for s, y in zip(subjects, labels)}
    sheet = pd.DataFrame({"subject": subjects,
                          "cohort": cohorts if cohorts is not None else ["internal"] * len(labels),
                          "label": labels})
    return sheet, crops
