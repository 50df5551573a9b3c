"""IBSI radiomics features of one image inside its lesion mask, computed by MIRP.

MIRP (Zwanenburg et al., github.com/oncoradiomics/mirp) is the library: it reproduces the IBSI 1
reference values of every feature family used here and the IBSI 2 image filters, is maintained, and
installs as a pure-Python wheel next to this project's pins (MIRP 2.5.0; 2.6+ needs scipy >= 1.17).
PyRadiomics 3.0.1 was the alternative: it deviates from IBSI in documented places and builds from
source only without build isolation (3.1.0 does not build on Python 3.11).

This module checks the inputs first (errors name the subject and the file), writes what MIRP is
given as a settings dict (recorded beside the features) and returns one row of features.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

#: Feature families (MIRP names): shape (morphology), first order (statistics, intensity
#: histogram), GLCM, GLRLM, GLSZM, NGLDM (pyradiomics' "GLDM"), NGTDM.
FAMILIES = ("morphology", "statistics", "intensity_histogram", "glcm", "glrlm", "glszm", "ngldm", "ngtdm")
#: Fewest mask voxels a texture matrix is computed on.
MIN_VOXELS = 8
#: Left out: Moran's I and Geary's C (spatial autocorrelation of intensities, IBSI morphology).
#: MIRP estimates them by Monte Carlo over 100-voxel subsets for masks of 1000 voxels or more,
#: which took 87% of the extraction time (17 of 19.5 s for one LGG tumor); pyradiomics has neither.
EXCLUDED_FEATURES = ("morph_moran_i", "morph_geary_c")
#: Voxels kept around the mask's bounding box when the image is cut for MIRP.
CROP_MARGIN = 4
#: Grey-level discretisation (IBSI 1, section 2.7): fixed bin size suits calibrated intensities
#: (CT HU, PET SUV) or intensities normalised first; fixed bin number (the ROI's own range in n bins)
#: is IBSI's choice for arbitrary units such as raw or N4-corrected MRI, where a fixed width would
#: make the bin count follow the scanner's gain.
DISCRETISATIONS = ("fixed_bin_size", "fixed_bin_number")
#: MIRP's bookkeeping columns (not features): dropped from the table.
META_PREFIXES = ("sample_name", "image_", "mask_")


class RadiomicsInputError(ValueError):
    pass


@dataclass(frozen=True)
class ExtractionSettings:
    """Everything that shapes the features (config ``radiomics.settings``); written beside them."""
    bin_width: float = 5.0
    lower_bound: float = 0.0
    discretisation: str = "fixed_bin_size"  # or fixed_bin_number (DISCRETISATIONS)
    bin_number: int = 32  # fixed_bin_number only
    normalisation: str = "none"  # none | standardisation (mean 0, sd 1 inside the mask)
    resampled_spacing: tuple[float, ...] | None = None  # mm, (x, y, z); None: native grid
    by_slice: bool = False
    families: tuple[str, ...] = field(default=FAMILIES)

    @classmethod
    def from_config(cls, settings: dict[str, Any]) -> ExtractionSettings:
        spacing = settings.get("resampled_spacing")
        return cls(bin_width=float(settings.get("bin_width", 5.0)),
                   lower_bound=float(settings.get("lower_bound", 0.0)),
                   discretisation=str(settings.get("discretisation", "fixed_bin_size")),
                   bin_number=int(settings.get("bin_number", 32)),
                   normalisation=str(settings.get("normalisation", "none")),
                   resampled_spacing=tuple(float(s) for s in spacing) if spacing else None,
                   by_slice=bool(settings.get("by_slice", False)),
                   families=tuple(settings.get("families") or FAMILIES))

    def mirp_arguments(self) -> dict[str, Any]:
        if self.discretisation not in DISCRETISATIONS:
            raise ValueError(f"radiomics.settings.discretisation {self.discretisation!r}: expected one of "
                             f"{', '.join(DISCRETISATIONS)}")
        discretisation: dict[str, Any] = (
            {"base_discretisation_bin_width": self.bin_width} if self.discretisation == "fixed_bin_size"
            else {"base_discretisation_n_bins": self.bin_number})
        args: dict[str, Any] = {
            "base_feature_families": list(self.families),
            "base_discretisation_method": self.discretisation,
            **discretisation,
            "resegmentation_intensity_range": [self.lower_bound, np.inf],
            "intensity_normalisation": self.normalisation,
            "by_slice": self.by_slice,
        }
        if self.resampled_spacing:
            # MIRP takes spacing as (z, y, x); ours is (x, y, z) like the NIfTI header.
            args["new_spacing"] = [float(s) for s in reversed(self.resampled_spacing)]
            args["spline_order"] = 1  # trilinear image, IBSI; the mask is thresholded at 0.5
        return args

    def record(self) -> dict[str, Any]:
        from importlib.metadata import version

        unused = "bin_width" if self.discretisation == "fixed_bin_number" else "bin_number"
        settings = {k: v for k, v in asdict(self).items() if k != unused}
        return {"library": "mirp", "version": version("mirp"), **settings,
                "excluded_features": list(EXCLUDED_FEATURES),
                "mirp_arguments": {k: (v if not isinstance(v, list) else [str(x) if x == np.inf else x for x in v])
                                   for k, v in self.mirp_arguments().items()}}


def check_inputs(subject: str, image_path: Path, mask_path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    """The image and its binary mask, or a RadiomicsInputError naming the subject and the file:
    mask not on the image's grid, empty, too small for texture, or a constant image inside it."""
    image, mask_img = nib.load(str(image_path)), nib.load(str(mask_path))
    if image.shape[:3] != mask_img.shape[:3] or not np.allclose(image.affine, mask_img.affine, atol=1e-3):
        raise RadiomicsInputError(
            f"subject {subject!r}: mask {mask_path} is not on the grid of image {image_path} "
            f"(shape {mask_img.shape[:3]} vs {image.shape[:3]}, affine differs by "
            f"{np.abs(image.affine - mask_img.affine).max() if image.shape[:3] == mask_img.shape[:3] else 'n/a'})")
    mask = np.asarray(mask_img.dataobj) > 0.5
    n = int(mask.sum())
    if n == 0:
        raise RadiomicsInputError(f"subject {subject!r}: mask {mask_path} is empty (no voxel > 0.5)")
    if n < MIN_VOXELS:
        raise RadiomicsInputError(f"subject {subject!r}: mask {mask_path} has {n} voxel(s); at least "
                                  f"{MIN_VOXELS} are needed for shape and texture features")
    data = np.asarray(image.dataobj, dtype=np.float64)
    if not np.isfinite(data[mask]).all():
        raise RadiomicsInputError(f"subject {subject!r}: image {image_path} has NaN/inf inside the mask")
    if np.ptp(data[mask]) == 0:
        raise RadiomicsInputError(f"subject {subject!r}: image {image_path} is constant ({data[mask][0]:g}) "
                                  "inside the mask: texture features are undefined")
    return image, mask


@contextmanager
def _without_excluded_features() -> Iterator[None]:
    """MIRP 2.5.0 has no option to skip single features: its morphology generator reads the
    feature classes from ``get_morphology_3d_class_dict`` at each call, so that lookup is filtered
    while MIRP runs (pinned version; tests/test_radiomics.py checks the features are absent)."""
    from mirp._features import morph_3d_features as morph

    original = morph.get_morphology_3d_class_dict

    def filtered() -> dict:
        return {k: v for k, v in original().items() if k not in EXCLUDED_FEATURES}

    morph.get_morphology_3d_class_dict = filtered
    try:
        yield
    finally:
        morph.get_morphology_3d_class_dict = original


def crop_box(mask: np.ndarray, margin: int = CROP_MARGIN) -> tuple[slice, ...]:
    where = np.argwhere(mask)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    return tuple(slice(max(0, int(a) - margin), min(n, int(b) + margin)) for a, b, n in zip(lo, hi, mask.shape))


def extract(subject: str, image_path: Path, mask_path: Path, settings: ExtractionSettings) -> pd.DataFrame:
    """One row: ``subject`` then every feature (IBSI names as MIRP writes them), sorted by name."""
    image, mask = check_inputs(subject, Path(image_path), Path(mask_path))
    from mirp import extract_features

    logging.getLogger("mirp").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        # The image and a clean 0/1 mask cut to the mask's bounding box plus CROP_MARGIN voxels
        # (the features only read voxels in and next to the mask: the same values, much faster).
        box = crop_box(mask)
        cut = image.slicer[box]
        cut_image, cut_mask = Path(tmp) / "image.nii.gz", Path(tmp) / "mask.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(cut.dataobj, dtype=np.float32), cut.affine), str(cut_image))
        nib.save(nib.Nifti1Image(mask[box].astype(np.uint8), cut.affine), str(cut_mask))
        with warnings.catch_warnings(), _without_excluded_features():
            warnings.simplefilter("ignore")
            tables = extract_features(image=str(cut_image), mask=str(cut_mask), **settings.mirp_arguments())
    if not tables or tables[0] is None or len(tables[0]) != 1:
        raise RadiomicsInputError(f"subject {subject!r}: MIRP returned no features for {image_path}")
    row = tables[0]
    features = sorted(c for c in row.columns if not c.startswith(META_PREFIXES))
    out = row[features].astype(float).reset_index(drop=True)
    out.insert(0, "subject", subject)
    return out


def gather(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per subject (sorted); every subject must have the same feature columns."""
    if not tables:
        raise RadiomicsInputError("no feature tables to gather")
    columns = list(tables[0].columns)
    for t in tables[1:]:
        if list(t.columns) != columns:
            extra = sorted(set(t.columns) ^ set(columns))[:3]
            raise RadiomicsInputError(f"subject {t['subject'].iloc[0]!r}: feature columns differ from "
                                      f"subject {tables[0]['subject'].iloc[0]!r} (e.g. {extra})")
    return pd.concat(tables, ignore_index=True).sort_values("subject").reset_index(drop=True)


def extract_cohort(inputs: dict[str, tuple[Path, Path]], settings: ExtractionSettings) -> pd.DataFrame:
    """Features of every subject (``subject -> (image, mask)``), one row each, sorted. Every
    subject is tried; the error then lists each failing subject with its reason."""
    import sys

    tables, errors = [], []
    for subject, (image, mask) in sorted(inputs.items()):
        try:
            tables.append(extract(subject, image, mask, settings))
        except RadiomicsInputError as exc:
            errors.append(str(exc))
            continue
        print(f"{subject}: {tables[-1].shape[1] - 1} features", file=sys.stderr, flush=True)
    if errors:
        raise RadiomicsInputError(f"{len(errors)} of {len(inputs)} subject(s) failed:\n" + "\n".join(errors))
    return gather(tables)
