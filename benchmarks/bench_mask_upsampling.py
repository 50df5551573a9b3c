"""Tumor-mask upsampling for the x2 radiomics variants (interp, sr): nearest neighbour (what the
workflow does, oncoflow.superres.baseline.upsample_mask) vs. a signed-distance interpolation (each
slice's 2D signed distance averaged between neighbours, thresholded at 0), on real tumor masks.

Truth: the BraTS segmentations of the TCGA gliomas in ../shared/data/tcga_glioma/*/sri24 (1 mm
isotropic). Keep every k-th slice (k mm spacing), upsample x2 and score only the new midway slices
against the true slice at that position: Dice and volume ratio (upsampled / true). Prints a
Markdown table (recorded in benchmarks/radiomics.md).

    .venv/bin/python benchmarks/bench_mask_upsampling.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from oncoflow.superres.baseline import upsample_mask


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """2D signed distance (mm at 1 mm pixels): negative inside the mask."""
    if not mask.any():
        return np.full(mask.shape, 1e3)
    return ndimage.distance_transform_edt(~mask) - ndimage.distance_transform_edt(mask)


def upsample_signed_distance(mask: np.ndarray) -> np.ndarray:
    """x2 along the last axis: source slices kept, midway slices where the mean of the two
    neighbours' signed distances is negative."""
    dist = np.stack([signed_distance(mask[..., z]) for z in range(mask.shape[2])], axis=2)
    out = np.empty(mask.shape[:2] + (2 * mask.shape[2] - 1,), dtype=bool)
    out[..., ::2] = mask
    out[..., 1::2] = (dist[..., :-1] + dist[..., 1:]) / 2 < 0
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(int(a.sum() + b.sum()), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    print("| subject | slice spacing -> x2 | Dice NN | Dice signed distance | volume ratio NN | volume ratio signed distance |")
    print("|---|---|---|---|---|---|")
    for path in sorted((args.data / "tcga_glioma").glob("TCGA-*/sri24/tumor_seg.nii.gz")):
        truth = np.asarray(nib.load(path).dataobj) > 0
        zs = np.nonzero(truth.any(axis=(0, 1)))[0]
        truth = truth[..., max(zs.min() - 8, 0): zs.max() + 9]
        for k in (2, 4, 6):
            low = truth[..., ::k]
            mid = truth[..., k // 2::k][..., : low.shape[2] - 1]  # the true slices at the midway positions
            nn = upsample_mask(low.astype(np.uint8), 2)[..., 1::2].astype(bool)
            sd = upsample_signed_distance(low)[..., 1::2]
            print(f"| {path.parts[-3]} | {k} mm -> {k / 2:g} mm | {dice(nn, mid):.3f} | {dice(sd, mid):.3f} | "
                  f"{nn.sum() / mid.sum():.3f} | {sd.sum() / mid.sum():.3f} |")


if __name__ == "__main__":
    main()
