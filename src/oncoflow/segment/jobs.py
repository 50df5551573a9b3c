"""What the segment rules do, from file paths (workflow/scripts/ call these in a line or two)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from oncoflow.atomic import atomic_write
from oncoflow.segment.crossfit import check_predicted_subject, check_segmenter_inputs
from oncoflow.segment.scores import SCORE_COLUMNS, score_mask
from oncoflow.segment.segmenter import SegmenterConfig, load_segmenter, predict_mask, train_segmenter
from oncoflow.segment.slices import SegmentError, load_slices, write_mask


def fit_fold_segmenter(fold: int, subjects: list[str], images: list[Path], brain_masks: list[Path],
                       tumor_masks: list[Path], params: dict[str, Any], splits: pd.DataFrame,
                       checkpoint: Path, history: Path, threads: int = 1) -> pd.DataFrame:
    """Rule tumor_segmenter. ``images``: subject-major, ``params['inputs']`` order within."""
    check_segmenter_inputs(subjects, splits, fold)
    cfg = SegmenterConfig.from_params(params)
    n = len(cfg.inputs)
    if len(images) != n * len(subjects) or len(brain_masks) != len(subjects) or len(tumor_masks) != len(subjects):
        raise ValueError(f"segmenter for fold {fold}: {len(subjects)} subjects but {len(images)} images, "
                         f"{len(brain_masks)} brain masks, {len(tumor_masks)} tumor masks")
    data = {}
    for i, s in enumerate(subjects):
        data[s] = load_slices(s, dict(zip(cfg.inputs, images[i * n:(i + 1) * n], strict=True)), brain_masks[i],
                              tumor_masks[i], cfg.size, cfg.margin_mm)
        print(f"segmenter fold {fold}: loaded {s} ({len(data[s].images)} slices)", file=sys.stderr)
    table = train_segmenter(data, cfg, checkpoint, fold=fold, threads=threads)
    with atomic_write(history) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return table


def segment_subject(subject: str, fold: int, images: dict[str, Path], brain_mask: Path,
                    manual_mask: Path | None, segmenter: Path, splits: pd.DataFrame, out_mask: Path,
                    out_scores: Path) -> dict[str, Any]:
    """Rule predicted_tumor_mask: the mask on the reference grid and its scores row."""
    check_predicted_subject(subject, splits, fold)
    net, cfg = load_segmenter(segmenter)
    slices = load_slices(subject, images, brain_mask, manual_mask, cfg.size, cfg.margin_mm)
    brain = np.asarray(nib.as_closest_canonical(nib.load(brain_mask)).dataobj) > 0.5
    mask = predict_mask(net, cfg, slices, brain)
    write_mask(mask, brain_mask, out_mask)
    row: dict[str, Any] = {"subject": subject, "fold": fold,
                           "role": splits.set_index(["fold", "subject"]).at[(fold, subject), "role"]}
    if manual_mask is None:
        row.update({c: math.nan for c in SCORE_COLUMNS},
                   predicted_ml=float(mask.sum() * np.prod(slices.grid.zooms) / 1000), note="no manual mask")
    else:
        manual = np.asarray(nib.as_closest_canonical(nib.load(manual_mask)).dataobj) > 0.5
        if manual.shape != mask.shape:
            raise SegmentError(subject, manual_mask, f"manual mask grid {manual.shape} != brain grid {mask.shape}")
        row.update(score_mask(mask, manual, slices.grid.zooms), note="")
    if not mask.any():
        row["note"] = "; ".join(filter(None, [row["note"], "empty predicted mask"]))
    with atomic_write(out_scores) as tmp:
        pd.DataFrame([row]).to_csv(tmp, sep="\t", index=False)
    return row


def segmentation_table(rows: list[Path], out: Path) -> pd.DataFrame:
    """Rule segmentation_table: one fold's rows, one per test / external patient."""
    table = pd.concat([pd.read_csv(p, sep="\t", keep_default_na=False, na_values=["", "NaN", "nan"])
                       for p in rows], ignore_index=True)
    with atomic_write(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return table


def _summary(rows: pd.DataFrame, fold: str) -> dict[str, Any]:
    scored = rows.dropna(subset=["dice"])
    return {"fold": fold, "patients": len(rows), "scored": len(scored),
            "dice_mean": scored["dice"].mean(), "dice_median": scored["dice"].median(),
            "dice_min": scored["dice"].min(), "dice_max": scored["dice"].max(),
            "hd95_median_mm": scored["hd95_mm"].median(),
            "volume_difference_mean_ml": scored["volume_difference_ml"].mean(),
            "detected": scored["detected"].mean()}


def segmentation_summary(tables: list[Path], out: Path) -> pd.DataFrame:
    """Rule segmentation_summary: per fold and role (internal test, external) the Dice (mean,
    median, range), median HD95, mean volume difference and detection rate of the patients with a
    manual mask; last, the cross-fitted masks (each patient once: the first fold testing it)."""
    rows = pd.concat([pd.read_csv(p, sep="\t") for p in tables], ignore_index=True)
    summary = [{**_summary(part, str(fold)), "role": role} for (fold, role), part in rows.groupby(["fold", "role"])]
    first = rows.sort_values("fold", kind="stable").drop_duplicates("subject")
    summary += [{**_summary(part, "cross-fitted"), "role": role} for role, part in first.groupby("role")]
    table = pd.DataFrame(summary)[["fold", "role", *[c for c in summary[0] if c not in ("fold", "role")]]]
    with atomic_write(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    return table
