"""Per-patient baseline features: log tumor volume and first-order statistics of the tumor's
intensities in each modality, relative to the brain (or organ / foreground) outside the tumor.

Every feature is computed from one patient's own images (z-scores against that patient's
brain-outside-tumor voxels), so nothing is fitted across patients here and nothing can leak
between folds; the per-fold model (:mod:`oncoflow.baseline.model`) does all the fitting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from oncoflow.crop.tumor_crop import load_canonical

#: Statistics of the tumor's z-scored intensities, per modality.
STATISTICS = ("mean", "sd", "p10", "p50", "p90")


class BaselineFeatureError(ValueError):
    pass


def tumor_statistics(image: np.ndarray, tumor: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Tumor intensities as z-scores against the reference region (brain outside the tumor)."""
    ref = image[reference]
    mean, sd = float(ref.mean()), max(float(ref.std()), 1e-6)
    z = (image[tumor] - mean) / sd
    p10, p50, p90 = np.percentile(z, [10, 50, 90])
    return {"mean": float(z.mean()), "sd": float(z.std()), "p10": float(p10), "p50": float(p50),
            "p90": float(p90)}


def subject_features(subject: str, images: dict[str, Path], brain_mask: Path, tumor_mask: Path) -> pd.DataFrame:
    """One row: subject, log_volume_ml, then <modality>_<statistic> for every modality."""
    tumor, zooms = load_canonical(tumor_mask)
    brain, _ = load_canonical(brain_mask)
    tumor, brain = tumor > 0.5, brain > 0.5
    if tumor.shape != brain.shape:
        raise BaselineFeatureError(f"{subject}: tumor mask {tumor_mask} ({tumor.shape}) and brain mask "
                                   f"{brain_mask} ({brain.shape}) are on different grids")
    if not tumor.any():
        raise BaselineFeatureError(f"{subject}: tumor mask {tumor_mask} is empty; fix the sample sheet's mask (or, "
                                   "for a predicted mask, the segmenter: segment.*)")
    reference = brain & ~tumor
    if reference.sum() < 10:
        # Tumor-only exports (or a mask covering the brain mask): fall back to the non-zero image
        # outside the tumor, decided per modality below.
        reference = None
    row: dict[str, float | str] = {"subject": subject,
                                   "log_volume_ml": float(np.log(tumor.sum() * float(np.prod(zooms)) / 1000.0))}
    for modality, path in images.items():
        image, _ = load_canonical(path)
        if image.shape != tumor.shape:
            raise BaselineFeatureError(f"{subject}: {modality} image {path} ({image.shape}) and tumor mask "
                                       f"{tumor_mask} ({tumor.shape}) are on different grids")
        ref = reference if reference is not None else (image != 0) & ~tumor
        if ref.sum() < 10:
            raise BaselineFeatureError(f"{subject}: fewer than 10 voxels outside the tumor in {path}; the "
                                       f"baseline needs brain (organ) around the tumor (baseline.activate: false "
                                       f"switches it off)")
        for name, value in tumor_statistics(image, tumor, ref).items():
            row[f"{modality}_{name}"] = value
    return pd.DataFrame([row])


def cohort_features(subjects: list[str], modalities: list[str], results: Path, tumor_masks: list[Path]) -> pd.DataFrame:
    """Every subject's row, from the workflow's brain-stage images and masks
    (results/<study>/subjects/<subject>/brain/) and ``tumor_masks`` (one per subject, in order, on the
    reference grid: the manual mask, or the cross-fitted predicted one under segment.feature_mask)."""
    if len(tumor_masks) != len(subjects):
        raise BaselineFeatureError(f"{len(tumor_masks)} tumor masks for {len(subjects)} subjects")
    rows = []
    for s, tumor_mask in zip(subjects, tumor_masks, strict=True):
        folder = results / "subjects" / s
        rows.append(subject_features(s, {m: folder / "brain" / f"{m}.nii.gz" for m in modalities},
                                     folder / "brain" / "brain_mask.nii.gz", tumor_mask))
    return pd.concat(rows, ignore_index=True)
