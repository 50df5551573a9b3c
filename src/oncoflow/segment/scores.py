"""A predicted tumor mask against the manual one: Dice, 95th-percentile Hausdorff distance (mm,
MONAI), volumes and their difference (ml), detection (any overlap)."""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance

#: columns of a segmentation table row, after subject (and fold)
SCORE_COLUMNS = ("dice", "hd95_mm", "manual_ml", "predicted_ml", "volume_difference_ml", "detected")


def score_mask(predicted: np.ndarray, manual: np.ndarray, zooms: tuple[float, float, float]) -> dict[str, float]:
    """Both masks on the same grid (voxel size ``zooms`` in mm). HD95 is NaN when either mask is
    empty (undefined); Dice is 0 for an empty prediction of a non-empty manual mask."""
    p = torch.from_numpy(predicted.astype(bool))[None, None]
    m = torch.from_numpy(manual.astype(bool))[None, None]
    dice = float(compute_dice(p.float(), m.float(), include_background=True, ignore_empty=False)[0, 0])
    hd95 = math.nan
    if predicted.any() and manual.any():
        hd95 = float(compute_hausdorff_distance(p.float(), m.float(), include_background=True, percentile=95,
                                                spacing=list(zooms))[0, 0])
    voxel_ml = float(np.prod(zooms)) / 1000
    manual_ml, predicted_ml = float(manual.sum() * voxel_ml), float(predicted.sum() * voxel_ml)
    return {"dice": dice, "hd95_mm": hd95, "manual_ml": manual_ml, "predicted_ml": predicted_ml,
            "volume_difference_ml": predicted_ml - manual_ml,
            "detected": float(bool((predicted.astype(bool) & manual.astype(bool)).any()))}
