"""Brain extraction backends.

- ``deepbet``: deepbet's two TorchScript models ship inside its wheel (MIT), so it needs no download
  and runs on a whole head with skull. Dice 0.972 against HD-BET on a real TCGA T1CE (benchmarks/).
- ``hdbet``: HD-BET 2 (nnU-Net) from a local weights folder; fails at once if the folder lacks them.
- ``none``: no brain extraction (non-brain studies, skull-stripped cohorts): the "brain" mask is the
  head/foreground mask of oncoflow.preprocess.masks, and the brain-plausibility checks do not apply.
deepbet and hdbet see the image resampled to 1 mm isotropic (what they were trained on) and the mask is resampled
back onto the input grid.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage, stats

from oncoflow.preprocess.errors import PreprocessError
from oncoflow.preprocess.masks import head_mask_array

BACKENDS = ("deepbet", "hdbet", "none")
# HD-BET 2.0 weights: nnU-Net's trained-model folder layout (fold "all").
HDBET_WEIGHT_FILES = ("dataset.json", "plans.json", "fold_all/checkpoint_final.pth")
# Adult brain (with CSF) is 1.0-2.0 L; outside this a mask is flagged in QC, not silently used.
PLAUSIBLE_BRAIN_ML = (800.0, 2200.0)
# Volume alone cannot catch a failure: deepbet draws a brain-sized blob on noise and on a geometric
# phantom. A brain also lies on image signal (not on the dark inside of a phantom or on background)
# and differs from the 10 mm shell around it (CSF, skull and scalp, or zeros after skull stripping).
# Measured: real TCGA and simulated heads >= 0.95 on signal, KS >= 0.31; GE phantom 6% on signal,
# noise KS <= 0.02 (tests/test_preprocess.py).
MIN_ON_SIGNAL = 0.8  # fraction of the mask inside the head (signal) mask
MIN_SHELL_CONTRAST = 0.1  # Kolmogorov-Smirnov distance, mask vs. shell intensities
SHELL_MM = 10.0


@dataclass
class BrainResult:
    mask: ants.ANTsImage
    volume_ml: float
    backend: str
    plausible: bool
    on_signal: float = float("nan")
    shell_contrast: float = float("nan")
    problems: tuple[str, ...] = ()  # why the mask is implausible; empty when plausible


def brain_plausibility(img: ants.ANTsImage, mask: np.ndarray, grid_mm: float = 2.0) -> tuple[float, float]:
    """(fraction of ``mask`` on head signal, KS distance between intensities in ``mask`` and in a
    SHELL_MM shell around it); both low when a "brain" was drawn on something that is not a head.
    Measured on a ``grid_mm`` grid when the image is finer: same answer, a fraction of the time."""
    if not np.asarray(mask, bool).any():
        return 0.0, 0.0
    mask_img = img.new_image_like(np.asarray(mask, "float32"))
    if float(np.prod(img.spacing)) < grid_mm**3:
        img = ants.resample_image(img, (grid_mm,) * 3, use_voxels=False, interp_type=0)
        mask_img = ants.resample_image_to_target(mask_img, img, interp_type="linear")
    arr, spacing = img.numpy(), tuple(float(s) for s in img.spacing)
    mask = mask_img.numpy() > 0.5
    if not mask.any():
        return 0.0, 0.0
    on_signal = float((head_mask_array(arr, spacing) & mask).sum() / mask.sum())
    dist = ndimage.distance_transform_edt(~mask, sampling=spacing)
    shell = (dist > 0) & (dist <= SHELL_MM)
    if not shell.any():  # the mask fills the field of view
        return on_signal, 0.0
    return on_signal, float(stats.ks_2samp(arr[mask], arr[shell]).statistic)


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
    if backend == "none":
        return foreground_mask(img, subject=subject, path=path)
    iso = ants.resample_image(img, (1.0, 1.0, 1.0), use_voxels=False, interp_type=0)
    if backend == "deepbet":
        try:
            mask_iso = _deepbet(iso, device=device)
        except (AssertionError, ValueError, RuntimeError) as exc:  # e.g. no head-like foreground
            raise PreprocessError(subject, path, f"brain extraction (deepbet) failed: {exc!r}") from exc
    elif backend == "hdbet":
        mask_iso = _hdbet(iso, subject=subject, weights=hdbet_weights, device=device)
    else:
        raise PreprocessError(subject, path, f"unknown brain extraction backend {backend!r}")
    mask_arr = ants.resample_image_to_target(mask_iso, img, interp_type="linear").numpy() > 0.5
    volume = float(mask_arr.sum()) * float(np.prod(img.spacing)) / 1000.0
    if volume == 0:
        raise PreprocessError(subject, path, f"brain extraction ({backend}) returned an empty mask")
    lo, hi = PLAUSIBLE_BRAIN_ML
    on_signal, contrast = brain_plausibility(img, mask_arr)
    problems = []
    if not lo <= volume <= hi:
        problems.append(f"brain volume {volume:.0f} mL outside {lo:.0f}-{hi:.0f} mL")
    if on_signal < MIN_ON_SIGNAL:
        problems.append(f"only {on_signal:.0%} of the mask lies on image signal")
    if contrast < MIN_SHELL_CONTRAST:
        problems.append(f"mask intensities do not differ from the {SHELL_MM:.0f} mm around it "
                        f"(KS {contrast:.2f}): not a head?")
    return BrainResult(
        mask=img.new_image_like(mask_arr.astype("float32")),
        volume_ml=volume,
        backend=backend,
        plausible=not problems,
        on_signal=on_signal,
        shell_contrast=contrast,
        problems=tuple(problems),
    )


def foreground_mask(img: ants.ANTsImage, *, subject: str, path: object) -> BrainResult:
    """Backend ``none``: the head/foreground mask stands in for the brain (no plausibility checks:
    it is not meant to be a brain)."""
    mask_arr = head_mask_array(img.numpy(), tuple(float(s) for s in img.spacing))
    if not mask_arr.any():
        raise PreprocessError(subject, path, "no foreground found for the mask (backend none)")
    volume = float(mask_arr.sum()) * float(np.prod(img.spacing)) / 1000.0
    return BrainResult(mask=img.new_image_like(mask_arr.astype("float32")), volume_ml=volume,
                       backend="none", plausible=True)


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
