"""Held-out quality of the generator vs. interpolation, and its application to one subject."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from oncoflow.superres.baseline import METHODS as BASELINES
from oncoflow.superres.baseline import interpolate, upsample_mask
from oncoflow.superres.degrade import SuperResError, axis_index, degrade, upsampled_affine
from oncoflow.superres.gan import Generator, upsample
from oncoflow.superres.metrics import quality

METHOD_ORDER = ("gan", *BASELINES)


def evaluate_volume(gen: Generator, volume: np.ndarray, axis: int) -> dict[str, dict[str, float]]:
    low, truth = degrade(volume.astype(np.float32), axis)
    estimates = {"gan": upsample(gen, low, axis), **{m: interpolate(low, axis, m) for m in BASELINES}}
    return {m: quality(truth, e, axis) for m, e in estimates.items()}


def evaluate_heldout(gen: Generator, images: dict[str, Path], axes: list[str]) -> pd.DataFrame:
    """One row per (subject, axis, method): PSNR, SSIM and the number of true dropped slices."""
    rows = []
    for subject, path in sorted(images.items()):
        data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
        for name in axes:
            axis = axis_index(name)
            if data.shape[axis] < 3:
                print(f"{subject}: {data.shape[axis]} slice(s) along {name}: skipped", file=sys.stderr)
                continue
            for method, q in evaluate_volume(gen, data, axis).items():
                rows.append({"subject": subject, "axis": name, "method": method, **q})
    if not rows:
        raise SuperResError("no held-out volume has 3 slices along the upsampled axes")
    return pd.DataFrame(rows)


def quality_markdown(table: pd.DataFrame) -> str:
    """Mean (sd) PSNR and SSIM per method and axis, and how often the GAN beats each baseline."""
    lines = ["| axis | method | subjects | PSNR (dB) mean (sd) | SSIM mean (sd) | GAN better PSNR in |",
             "|---|---|---|---|---|---|"]
    for axis, part in table.groupby("axis", sort=False):
        gan = part[part["method"] == "gan"].set_index("subject")
        for method in METHOD_ORDER:
            rows = part[part["method"] == method].set_index("subject")
            wins = "" if method == "gan" else f"{int((gan['psnr'] > rows['psnr']).sum())}/{len(rows)}"
            lines.append(f"| {axis} | {method} | {len(rows)} | {rows['psnr'].mean():.2f} ({rows['psnr'].std():.2f}) | "
                         f"{rows['ssim'].mean():.4f} ({rows['ssim'].std():.4f}) | {wins} |")
    return "\n".join(lines) + "\n"


def apply_to_subject(subject: str, gen: Generator, image_path: Path, mask_path: Path, axes: list[str],
                     out_image: Path, out_mask: Path) -> None:
    """Image x2 along each axis (generator), mask on the same grid (nearest neighbour)."""
    _upsample_subject(subject, lambda data, axis: upsample(gen, data, axis), image_path, mask_path, axes,
                      out_image, out_mask)


def interpolate_subject(subject: str, image_path: Path, mask_path: Path, axes: list[str], out_image: Path,
                        out_mask: Path, method: str = "bspline") -> None:
    """The interpolation control of super-resolution: image x2 along each axis by ``method``
    (baseline.METHODS) on the generator's grid, mask by the same nearest-neighbour rule."""
    _upsample_subject(subject, lambda data, axis: interpolate(data, axis, method), image_path, mask_path, axes,
                      out_image, out_mask)


def _upsample_subject(subject: str, upsample_axis: Callable[[np.ndarray, int], np.ndarray], image_path: Path,
                      mask_path: Path, axes: list[str], out_image: Path, out_mask: Path) -> None:
    image, mask_img = nib.load(str(image_path)), nib.load(str(mask_path))
    if image.shape[:3] != mask_img.shape[:3] or not np.allclose(image.affine, mask_img.affine, atol=1e-3):
        raise SuperResError(f"subject {subject!r}: tumor mask {mask_path} is not on the grid of {image_path}")
    data = np.asarray(image.dataobj, dtype=np.float32)
    mask = (np.asarray(mask_img.dataobj) > 0.5).astype(np.uint8)
    affine = image.affine
    for name in axes:
        axis = axis_index(name)
        if data.shape[axis] < 2:
            raise SuperResError(f"subject {subject!r}: {image_path} has {data.shape[axis]} slice along {name}")
        data, mask = upsample_axis(data, axis), upsample_mask(mask, axis)
        affine = upsampled_affine(affine, axis)
    header = image.header.copy()
    header.set_data_dtype(np.float32)
    out = nib.Nifti1Image(data.astype(np.float32), affine, header)
    out.set_qform(affine, code=int(image.header["qform_code"]) or 1)
    out.set_sform(affine, code=int(image.header["sform_code"]) or 1)
    nib.save(out, str(out_image))
    m = nib.Nifti1Image(mask, affine)
    m.set_qform(affine, code=1)
    m.set_sform(affine, code=1)
    nib.save(m, str(out_mask))
