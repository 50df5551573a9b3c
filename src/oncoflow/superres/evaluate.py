"""Held-out quality of the generator vs. interpolation, and its application to one subject."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from oncoflow.superres.baseline import METHODS as BASELINES
from oncoflow.superres.baseline import interpolate
from oncoflow.superres.degrade import SuperResError, axis_index, degrade
from oncoflow.superres.gan import Generator, upsample
from oncoflow.superres.metrics import quality
from oncoflow.superres.subject import upsample_subject

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
    upsample_subject(subject, lambda data, axis: upsample(gen, data, axis), image_path, mask_path, axes,
                     out_image, out_mask)
