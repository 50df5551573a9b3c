"""One subject's preprocessing stages, as called by the workflow's scripts (one function a rule)."""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path

import ants
import numpy as np

from oncoflow.atomic import atomic_write, copy_file
from oncoflow.preprocess.brain import HDBET_DEFAULTS, MIN_AGREEMENT, HdbetSettings, extract_brain, mask_dice
from oncoflow.preprocess.errors import PreprocessError
from oncoflow.preprocess.images import read_image, same_grid, write_image
from oncoflow.preprocess.n4 import correct_bias, effective_shrink
from oncoflow.preprocess.register import (NO_TRANSFORM, apply_to_mask, identity_transform, mattes_mi,
                                         register_to_reference, same_space_problem)


def log(subject: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {subject}: {message}", file=sys.stderr, flush=True)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.2f}" for v in values) + ")"


def _round(value: float, digits: int = 3) -> object:
    return "" if value != value else round(float(value), digits)  # NaN (not measured) -> empty


def write_tsv(path: Path, rows: list[dict[str, object]]) -> None:
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def bias_correct_subject(
    subject: str, inputs: dict[str, Path], outputs: dict[str, Path], *, shrink_factor: int,
    iterations: tuple[int, ...], activate: bool = True,
) -> None:
    """N4 of every modality; with ``activate=False`` the checked inputs are copied unchanged (the n4/
    folder stays, so the results layout does not depend on the switch)."""
    for modality, src in inputs.items():
        start = time.time()
        img = read_image(src, subject)
        if activate:
            write_image(correct_bias(img, shrink_factor=shrink_factor, iterations=iterations), outputs[modality],
                        subject)
            shrink = effective_shrink(img.shape, shrink_factor)
            note = f" (shrink {shrink} instead of {shrink_factor}: few slices)" if shrink != shrink_factor else ""
            log(subject, f"N4 {modality} {img.shape} in {time.time() - start:.1f} s{note}")
        else:
            copy_file(src, outputs[modality])
            log(subject, f"N4 off (preprocess.n4.activate: false): {modality} copied unchanged")


def read_mask(path: Path, subject: str) -> ants.ANTsImage:
    """A tumor mask: as read_image, but an all-zero (or all-one) mask is named for what it is."""
    try:
        return read_image(path, subject)
    except PreprocessError as exc:
        if exc.reason != "image is constant":
            raise
        value = float(ants.image_read(str(path)).numpy().flat[0])
        raise PreprocessError(subject, path, "tumor mask is empty" if value == 0 else
                              f"tumor mask is {value:g} everywhere: not a mask") from exc


def _check_tumor_mask_grid(subject: str, tumor_mask: Path, mask: ants.ANTsImage, space: str,
                           space_path: Path, space_img: ants.ANTsImage) -> None:
    """A tumor mask must lie on its modality's grid (shape, spacing, origin and direction; a
    same-shaped grid of another series is not enough)."""
    if not same_grid(mask, space_img):
        raise PreprocessError(subject, tumor_mask, f"tumor mask grid (shape {mask.shape}, spacing "
                              f"{_fmt(mask.spacing)}, origin {_fmt(mask.origin)}) differs from its "
                              f"{space} image grid (shape {space_img.shape}, spacing "
                              f"{_fmt(space_img.spacing)}, origin {_fmt(space_img.origin)}) in "
                              f"{space_path}")


def coregister_subject(
    subject: str,
    inputs: dict[str, Path],
    outputs: dict[str, Path],
    *,
    reference: str,
    report: Path,
    transform: str,
    iterations: tuple[int, ...] = (100, 50, 10),
    transforms_out: dict[str, Path] | None = None,
    tumor_mask: Path | None = None,
    tumor_mask_space: str | None = None,
    tumor_mask_out: Path | None = None,
) -> None:
    """Register every modality onto the reference (``transform`` Rigid/Affine), or with ``none``
    only resample it onto the reference grid after checking that it lies in the same space.

    ``transforms_out``: where to write each modality's transform to the reference (ITK affine .mat;
    identity for the reference and for ``none``), read by ``transform_tumor_mask_subject``.
    ``tumor_mask``: optionally carry a mask from ``tumor_mask_space`` at once (checked first)."""
    if reference not in inputs:
        raise PreprocessError(subject, reference, "reference modality missing from inputs")
    if tumor_mask is not None:  # check the mask before minutes of registration
        if tumor_mask_space not in inputs:
            raise PreprocessError(subject, tumor_mask, f"tumor_mask_space {tumor_mask_space!r} is not "
                                  f"one of the subject's modalities {sorted(inputs)}")
        mask = read_mask(tumor_mask, subject)
        _check_tumor_mask_grid(subject, tumor_mask, mask, tumor_mask_space, inputs[tumor_mask_space],
                               read_image(inputs[tumor_mask_space], subject))
    fixed = read_image(inputs[reference], subject)
    moving = {m: read_image(src, subject) for m, src in inputs.items() if m != reference}
    if transform == NO_TRANSFORM:
        for modality, img in moving.items():
            problem = same_space_problem(fixed, img)
            if problem:
                raise PreprocessError(subject, inputs[modality], f"registration.transform is 'none' but "
                                      f"{modality} is not in the {reference}'s space ({inputs[reference]}): "
                                      f"{problem}. Use Rigid or Affine for images not registered yet.")
    write_image(fixed, outputs[reference], subject)
    transforms: dict[str, list[str]] = {reference: []}
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="oncoflow-coreg-") as tmp:
        identity = Path(tmp) / "identity.mat"
        ants.write_transform(identity_transform(), str(identity))
        for modality, img in moving.items():
            start = time.time()
            if transform == NO_TRANSFORM:
                warped = (img if same_grid(img, fixed)
                          else ants.resample_image_to_target(img, fixed, interp_type="linear"))
                before = after = mattes_mi(fixed, img)
                transforms[modality] = []
                how = "resampled onto the reference grid (transform none)"
            else:
                reg = register_to_reference(fixed, img, transform=transform, iterations=iterations)
                warped, before, after = reg.warped, reg.similarity_before, reg.similarity_after
                transforms[modality] = reg.transforms
                how = "registered"
            write_image(warped, outputs[modality], subject)
            rows.append({"subject": subject, "modality": modality, "reference": reference,
                         "transform": transform, "mi_before": round(before, 5), "mi_after": round(after, 5),
                         "seconds": round(time.time() - start, 2)})
            log(subject, f"{how} {modality} -> {reference}: MI {before:.3f} -> {after:.3f} in "
                f"{time.time() - start:.1f} s")
        for modality, out in (transforms_out or {}).items():
            copy_file(transforms[modality][0] if transforms[modality] else identity, out)
        if tumor_mask is not None:
            moved = apply_to_mask(mask, fixed, transforms[tumor_mask_space])
            if moved.numpy().sum() == 0:
                raise PreprocessError(subject, tumor_mask, "tumor mask is empty on the reference grid")
            write_image(moved, tumor_mask_out, subject)
    write_tsv(report, rows or [{"subject": subject, "modality": reference, "reference": reference,
                                "transform": "none", "mi_before": "", "mi_after": "", "seconds": 0}])


def transform_tumor_mask_subject(
    subject: str,
    tumor_mask: Path,
    *,
    space: str,
    space_image: Path,
    reference_image: Path,
    transform: Path,
    out: Path,
) -> None:
    """Carry a tumor mask drawn on ``space``'s grid (``space_image``) onto the reference grid with
    that modality's registration transform (nearest label)."""
    mask = read_mask(tumor_mask, subject)
    values = np.unique(mask.numpy())
    if not np.isin(values, (0.0, 1.0)).all():
        log(subject, f"tumor mask {tumor_mask} holds labels {values[:8].tolist()}: every label > 0.5 is tumor")
    _check_tumor_mask_grid(subject, tumor_mask, mask, space, space_image, read_image(space_image, subject))
    if not (mask.numpy() > 0.5).any():
        raise PreprocessError(subject, tumor_mask, "tumor mask is empty")
    fixed = read_image(reference_image, subject)
    moved = apply_to_mask(mask, fixed, [str(transform)])
    voxels = int(moved.numpy().sum())
    if voxels == 0:
        raise PreprocessError(subject, tumor_mask, "tumor mask is empty on the reference grid (outside "
                              "the reference's field of view?)")
    write_image(moved, out, subject)
    log(subject, f"tumor mask ({space}) -> reference grid: {voxels * float(np.prod(fixed.spacing)) / 1000:.1f} mL")


def extract_brain_subject(
    subject: str,
    inputs: dict[str, Path],
    outputs: dict[str, Path],
    *,
    reference: str,
    mask_out: Path,
    report: Path,
    backend: str,
    device: str,
    hdbet: HdbetSettings = HDBET_DEFAULTS,
    second_opinion: str | None = None,
    second_mask_out: Path | None = None,
    min_agreement: float = MIN_AGREEMENT,
) -> None:
    """Brain mask of the reference (``backend``), applied to every modality; with ``second_opinion``
    a second extractor's mask of the same image, its volume and its Dice with the first go to the
    report, and a Dice below ``min_agreement`` flags the subject. ``second_mask_out`` is written either
    way (all zero without a second opinion) so that the results layout does not depend on it."""
    start = time.time()
    ref = read_image(inputs[reference], subject)
    result = extract_brain(ref, subject=subject, path=inputs[reference], backend=backend, hdbet=hdbet,
                           device=device)
    seconds = time.time() - start
    write_image(result.mask, mask_out, subject)
    for modality, src in inputs.items():
        write_image(read_image(src, subject) * result.mask, outputs[modality], subject)
    problems = list(result.problems)
    second_ml = agreement = float("nan")
    second = ref.new_image_like(np.zeros(ref.shape, "float32"))
    if second_opinion:
        try:
            other = extract_brain(ref, subject=subject, path=inputs[reference], backend=second_opinion,
                                  hdbet=hdbet, device=device)
        except PreprocessError as exc:  # a failed check is a finding, not a failed subject
            other = None
            problems.append(f"second opinion ({second_opinion}) failed: {exc.reason}")
        if other is not None:
            second, second_ml = other.mask, other.volume_ml
            agreement = mask_dice(result.mask.numpy() > 0.5, other.mask.numpy() > 0.5)
        if agreement < min_agreement:
            problems.append(f"{backend} and {second_opinion} disagree (Dice {agreement:.2f} < {min_agreement:g}; "
                            f"{result.volume_ml:.0f} vs {second_ml:.0f} mL)")
    if second_mask_out is not None:
        write_image(second, second_mask_out, subject)
    flag = "" if not problems else "implausible brain mask: " + "; ".join(problems)
    write_tsv(report, [{"subject": subject, "backend": backend, "brain_ml": round(result.volume_ml, 1),
                        "on_signal": _round(result.on_signal), "shell_contrast": _round(result.shell_contrast),
                        "second_backend": second_opinion or "", "second_ml": _round(second_ml, 1),
                        "agreement_dice": _round(agreement), "flag": flag, "seconds": round(seconds, 2),
                        "total_seconds": round(time.time() - start, 2)}])
    log(subject, f"brain mask ({backend}) {result.volume_ml:.0f} mL in {seconds:.1f} s"
        + (f"; {second_opinion} {second_ml:.0f} mL, Dice {agreement:.3f}" if second_opinion else "")
        + (f"  WARNING: {flag}" if flag else ""))
