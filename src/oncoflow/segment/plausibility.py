"""Whether a predicted tumor mask may be cropped: its volume within bounds and its share inside the
brain (segment keys min_predicted_ml, max_predicted_ml, min_inside_brain). Used for a new subject's
masks (oncoflow predict, oncoflow.segment.new_subjects) and for a study subject's cross-fitted mask
(rule crop_tumor with segment.crop_mask predicted); imports no torch (crop jobs stay light)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from oncoflow.crop.tumor_crop import NOT_CROPPED_STATUS, CropSpec, crop_subject, write_not_cropped


def implausible(predicted_ml: float, inside_brain: float, bounds: dict[str, float]) -> str:
    """Why a predicted mask is not to be cropped ('' when it is plausible)."""
    if predicted_ml <= 0:
        return "empty"
    if predicted_ml < bounds["min_predicted_ml"]:
        return f"{predicted_ml:.3g} ml < {bounds['min_predicted_ml']:g} ml"
    if predicted_ml > bounds["max_predicted_ml"]:
        return f"{predicted_ml:.3g} ml > {bounds['max_predicted_ml']:g} ml"
    if inside_brain < bounds["min_inside_brain"]:
        return f"{inside_brain:.0%} inside the brain < {bounds['min_inside_brain']:.0%}"
    return ""


def predicted_mask_verdict(tumor_mask: Path, brain_mask: Path, bounds: dict[str, float]) -> str:
    """Why a written predicted mask (on the brain mask's grid) is not to be cropped, '' when it is
    plausible: the same bounds as a new subject's (rule crop_tumor with segment.crop_mask)."""
    mask_img = nib.as_closest_canonical(nib.load(tumor_mask))
    mask = np.asarray(mask_img.dataobj) > 0.5
    brain = np.asarray(nib.as_closest_canonical(nib.load(brain_mask)).dataobj) > 0.5
    predicted_ml = float(mask.sum() * np.prod(mask_img.header.get_zooms()[:3]) / 1000)
    inside = float((mask & brain).sum() / mask.sum()) if mask.any() else 0.0
    return implausible(predicted_ml, inside, bounds)


def crop_predicted_mask(subject: str, images: dict[str, Path], brain_mask: Path, tumor_mask: Path,
                        out: Path, spec: CropSpec, bounds: dict[str, float]) -> dict[str, object]:
    """Rule crop_tumor on a cross-fitted predicted mask: the crop (crop_subject's numbers) when the
    mask is plausible; else a crop file that only says why, and that ``status`` (never a crop at random)."""
    reason = predicted_mask_verdict(tumor_mask, brain_mask, bounds)
    if reason:
        status = f"{NOT_CROPPED_STATUS}: predicted tumor mask {reason} ({tumor_mask})"
        write_not_cropped(out, status)
        return {"status": status}
    return crop_subject(subject, images, brain_mask, tumor_mask, out, spec)
