"""A new subject's tumor masks from a bundle's segmenters (``oncoflow predict``, rule
segment_new_subject): every fold's segmenter predicts the mask on the subject's reference grid,
the mask is judged plausible or not (volume bounds, share inside the brain: segment keys
min_predicted_ml, max_predicted_ml, min_inside_brain), and a plausible mask is cropped exactly as
crop_tumor crops a manual one, so fold k's model scores the crop from fold k's mask. An
implausible mask is never cropped: the subject is listed as not scored, with the numbers. The same
bounds judge a study subject's cross-fitted predicted mask before crop_tumor crops it
(:func:`predicted_mask_verdict`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from oncoflow.atomic import atomic_write
from oncoflow.crop.tumor_crop import CropSpec, crop_subject
from oncoflow.segment.plausibility import implausible
from oncoflow.segment.segmenter import load_segmenter, predict_mask_and_raw
from oncoflow.segment.slices import load_slices, write_mask

#: columns of predicted_mask.tsv (one row per fold)
MASK_COLUMNS = ["subject", "fold", "predicted_ml", "inside_brain", "plausible", "reason", "mask", "crop"]


def segment_new_subject(subject: str, images: dict[str, Path], brain_mask: Path, segmenters: dict[int, Path],
                        bounds: dict[str, float], crop: dict[str, Any], masks: dict[int, Path], crops: Path,
                        table: Path) -> pd.DataFrame:
    """Every fold's predicted mask (``masks``: fold -> NIfTI out, on the brain mask's grid), the
    crop of each plausible one (``crops``/fold<k>.npz) and the table (MASK_COLUMNS)."""
    brain = np.asarray(nib.as_closest_canonical(nib.load(brain_mask)).dataobj) > 0.5
    spec = CropSpec(size=crop["size"], margin_mm=crop["margin_mm"], region=crop.get("region", "tumor"),
                    field_of_view_mm=crop.get("field_of_view_mm"))
    crops.mkdir(parents=True, exist_ok=True)
    rows = []
    for fold, path in sorted(segmenters.items()):
        net, cfg = load_segmenter(path)
        slices = load_slices(subject, {m: images[m] for m in cfg.inputs}, brain_mask, None, cfg.size, cfg.margin_mm)
        mask, raw = predict_mask_and_raw(net, cfg, slices, brain)
        write_mask(mask, brain_mask, masks[fold])
        predicted_ml = float(mask.sum() * np.prod(slices.grid.zooms) / 1000)
        inside = float((raw & brain).sum() / raw.sum()) if raw.any() else 0.0
        reason = implausible(predicted_ml, inside, bounds)
        out = crops / f"fold{fold}.npz"
        if not reason:
            crop_subject(subject, images, brain_mask, masks[fold], out, spec)
        rows.append({"subject": subject, "fold": fold, "predicted_ml": predicted_ml, "inside_brain": inside,
                     "plausible": int(not reason), "reason": reason, "mask": str(masks[fold]),
                     "crop": str(out) if not reason else ""})
        print(f"{subject}: fold {fold} segmenter: {predicted_ml:.2f} ml, {inside:.0%} inside the brain"
              f"{' -> not cropped: ' + reason if reason else ''}", file=sys.stderr)
    result = pd.DataFrame(rows, columns=MASK_COLUMNS)
    with atomic_write(table) as tmp:
        result.to_csv(tmp, sep="\t", index=False)
    return result


def read_mask_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"subject": str, "reason": str, "crop": str},
                       keep_default_na=False)


def scored_fold_crops(tables: dict[str, Path]) -> tuple[dict[str, str], dict[int, dict[str, Path]]]:
    """From each subject's predicted_mask.tsv: subject -> '' (every fold's mask plausible) or why
    it is not scored, and fold -> the crops of that fold's masks (the crops fold k's model scores)."""
    reasons: dict[str, str] = {}
    fold_crops: dict[int, dict[str, Path]] = {}
    for subject, path in tables.items():
        table = read_mask_table(path)
        reasons[subject] = not_scored_reason(table)
        if not reasons[subject]:
            for r in table.itertuples():
                fold_crops.setdefault(int(r.fold), {})[subject] = Path(r.crop)
    return reasons, fold_crops


def not_scored_reason(rows: pd.DataFrame) -> str:
    """'' when every fold's mask is plausible; else the status naming each implausible fold."""
    bad = rows[rows["plausible"].astype(int) == 0]
    if bad.empty:
        return ""
    detail = "; ".join(f"fold {int(r.fold)}: {r.reason}" for r in bad.itertuples())
    return f"not scored: predicted tumor mask empty/implausible ({detail})"
