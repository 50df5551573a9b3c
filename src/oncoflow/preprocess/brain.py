"""Brain extraction backends.

- ``deepbet``: deepbet's two TorchScript models ship inside its wheel (MIT), so it needs no download
  and runs on a whole head with skull. Dice 0.972 against HD-BET on a real TCGA T1CE (benchmarks/).
- ``hdbet``: HD-BET 2 (nnU-Net) from a local weights folder; fails at once if the folder lacks them.
Both see the image resampled to 1 mm isotropic (what they were trained on) and the mask is resampled
back onto the input grid.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import ants
import nibabel as nib
import numpy as np

from oncoflow.preprocess.errors import PreprocessError

BACKENDS = ("deepbet", "hdbet")
# HD-BET 2.0 weights: nnU-Net's trained-model folder layout (fold "all").
HDBET_WEIGHT_FILES = ("dataset.json", "plans.json", "fold_all/checkpoint_final.pth")
# Adult brain (with CSF) is 1.0-2.0 L; outside this a mask is flagged in QC, not silently used.
PLAUSIBLE_BRAIN_ML = (800.0, 2200.0)


@dataclass
class BrainResult:
    mask: ants.ANTsImage
    volume_ml: float
    backend: str
    plausible: bool


def extract_brain(
    img: ants.ANTsImage,
    *,
    subject: str,
    path: object,
    backend: str = "deepbet",
    hdbet_weights: Path | None = None,
    device: str = "cpu",
) -> BrainResult:
    """Brain mask on the grid of ``img`` (a whole-head image, ideally bias-corrected)."""
    iso = ants.resample_image(img, (1.0, 1.0, 1.0), use_voxels=False, interp_type=0)
    if backend == "deepbet":
        mask_iso = _deepbet(iso, device=device)
    elif backend == "hdbet":
        mask_iso = _hdbet(iso, subject=subject, weights=hdbet_weights, device=device)
    else:
        raise PreprocessError(subject, path, f"unknown brain extraction backend {backend!r}")
    mask_arr = ants.resample_image_to_target(mask_iso, img, interp_type="linear").numpy() > 0.5
    volume = float(mask_arr.sum()) * float(np.prod(img.spacing)) / 1000.0
    if volume == 0:
        raise PreprocessError(subject, path, f"brain extraction ({backend}) returned an empty mask")
    lo, hi = PLAUSIBLE_BRAIN_ML
    return BrainResult(
        mask=img.new_image_like(mask_arr.astype("float32")),
        volume_ml=volume,
        backend=backend,
        plausible=lo <= volume <= hi,
    )


def _ants_to_nib(img: ants.ANTsImage, tmp: Path) -> nib.Nifti1Image:
    path = tmp / "in.nii.gz"
    ants.image_write(img, str(path))
    return nib.load(path)


def _nib_to_ants(img: nib.Nifti1Image, tmp: Path) -> ants.ANTsImage:
    path = tmp / "mask.nii.gz"
    nib.save(img, path)
    return ants.image_read(str(path), pixeltype="float")


def _deepbet(iso: ants.ANTsImage, *, device: str) -> ants.ANTsImage:
    from deepbet import BrainExtraction

    bet = BrainExtraction(no_gpu=not device.startswith("cuda"))
    with tempfile.TemporaryDirectory() as tmp:
        _, mask, _ = bet.run(_ants_to_nib(iso, Path(tmp)))
        return _nib_to_ants(mask, Path(tmp))


def check_hdbet_weights(weights: Path | str | None) -> Path:
    """The weights folder must hold HD-BET's nnU-Net model; say exactly what is missing."""
    if not weights:
        raise FileNotFoundError(
            "preprocess.brain_extraction.backend is 'hdbet' but "
            "preprocess.brain_extraction.hdbet_weights is not set: point it at a folder holding "
            f"HD-BET 2.0 weights ({', '.join(HDBET_WEIGHT_FILES)}); fetch them on a login node "
            "with `snakemake download_models`."
        )
    missing = [f for f in HDBET_WEIGHT_FILES if not (Path(weights) / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"HD-BET weights folder {weights} lacks {', '.join(missing)}; put HD-BET 2.0's "
            "release_2.0.0 files there (run `snakemake download_models` on a login node)."
        )
    return Path(weights)


def _hdbet(iso: ants.ANTsImage, *, subject: str, weights: Path | None, device: str) -> ants.ANTsImage:
    folder = check_hdbet_weights(weights)
    try:
        import torch
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    except ImportError as exc:  # HD-BET is an optional extra
        raise PreprocessError(subject, folder, "the hdbet backend needs `pip install hd-bet`") from exc
    predictor = nnUNetPredictor(
        tile_step_size=0.5, use_mirroring=True, device=torch.device(device), verbose=False
    )
    predictor.initialize_from_trained_model_folder(str(folder), use_folds=("all",))
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in_0000.nii.gz", Path(tmp) / "out.nii.gz"
        ants.image_write(iso, str(src))
        predictor.predict_from_files([[str(src)]], [str(out)], save_probabilities=False)
        pred = ants.image_read(str(out), pixeltype="float")
    return iso.new_image_like((pred.numpy() > 0).astype("float32"))
