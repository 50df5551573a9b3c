"""One subject's preprocessing stages, as called by the workflow's scripts (one function a rule)."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import ants

from oncoflow.preprocess.brain import extract_brain
from oncoflow.preprocess.errors import PreprocessError
from oncoflow.preprocess.images import read_image, same_grid, write_image
from oncoflow.preprocess.n4 import correct_bias
from oncoflow.preprocess.register import apply_to_mask, register_to_reference


def log(subject: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {subject}: {message}", file=sys.stderr, flush=True)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.2f}" for v in values) + ")"


def write_tsv(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def bias_correct_subject(
    subject: str, inputs: dict[str, Path], outputs: dict[str, Path], *, shrink_factor: int,
    iterations: tuple[int, ...],
) -> None:
    for modality, src in inputs.items():
        start = time.time()
        img = read_image(src, subject)
        write_image(correct_bias(img, shrink_factor=shrink_factor, iterations=iterations), outputs[modality])
        log(subject, f"N4 {modality} {img.shape} in {time.time() - start:.1f} s")


def coregister_subject(
    subject: str,
    inputs: dict[str, Path],
    outputs: dict[str, Path],
    *,
    reference: str,
    tumor_mask: Path,
    tumor_mask_space: str,
    tumor_mask_out: Path,
    report: Path,
    transform: str,
    iterations: tuple[int, ...] = (100, 50, 10),
) -> None:
    """Register every modality onto the reference; carry the tumor mask from its own space."""
    if reference not in inputs:
        raise PreprocessError(subject, reference, "reference modality missing from inputs")
    # Check the tumor mask before minutes of registration: it must lie on its modality's grid
    # (shape, spacing, origin and direction; a same-shaped grid of another series is not enough).
    if tumor_mask_space not in inputs:
        raise PreprocessError(subject, tumor_mask, f"tumor_mask_space {tumor_mask_space!r} is not "
                              f"one of the subject's modalities {sorted(inputs)}")
    mask = read_image(tumor_mask, subject)
    space_img = read_image(inputs[tumor_mask_space], subject)
    if not same_grid(mask, space_img):
        raise PreprocessError(subject, tumor_mask, f"tumor mask grid (shape {mask.shape}, spacing "
                              f"{_fmt(mask.spacing)}, origin {_fmt(mask.origin)}) differs from its "
                              f"{tumor_mask_space} image grid (shape {space_img.shape}, spacing "
                              f"{_fmt(space_img.spacing)}, origin {_fmt(space_img.origin)}) in "
                              f"{inputs[tumor_mask_space]}")
    fixed = read_image(inputs[reference], subject)
    write_image(fixed, outputs[reference])
    transforms: dict[str, list[str]] = {reference: []}
    rows: list[dict[str, object]] = []
    for modality, src in inputs.items():
        if modality == reference:
            continue
        start = time.time()
        reg = register_to_reference(fixed, read_image(src, subject), transform=transform,
                                    iterations=iterations)
        write_image(reg.warped, outputs[modality])
        transforms[modality] = reg.transforms
        rows.append(
            {
                "subject": subject,
                "modality": modality,
                "reference": reference,
                "transform": transform,
                "mi_before": round(reg.similarity_before, 5),
                "mi_after": round(reg.similarity_after, 5),
                "seconds": round(time.time() - start, 2),
            }
        )
        log(subject, f"registered {modality} -> {reference}: MI {reg.similarity_before:.3f} -> "
            f"{reg.similarity_after:.3f} in {time.time() - start:.1f} s")
    moved = apply_to_mask(mask, fixed, transforms[tumor_mask_space])
    if moved.numpy().sum() == 0:
        raise PreprocessError(subject, tumor_mask, "tumor mask is empty on the reference grid")
    write_image(moved, tumor_mask_out)
    write_tsv(report, rows or [{"subject": subject, "modality": reference, "reference": reference,
                                "transform": "none", "mi_before": "", "mi_after": "", "seconds": 0}])


def extract_brain_subject(
    subject: str,
    inputs: dict[str, Path],
    outputs: dict[str, Path],
    *,
    reference: str,
    mask_out: Path,
    report: Path,
    backend: str,
    hdbet_weights: Path | None,
    device: str,
) -> None:
    start = time.time()
    ref = read_image(inputs[reference], subject)
    result = extract_brain(ref, subject=subject, path=inputs[reference], backend=backend,
                           hdbet_weights=hdbet_weights, device=device)
    write_image(result.mask, mask_out)
    for modality, src in inputs.items():
        write_image(read_image(src, subject) * result.mask, outputs[modality])
    flag = "" if result.plausible else "implausible brain mask: " + "; ".join(result.problems)
    write_tsv(report, [{"subject": subject, "backend": backend, "brain_ml": round(result.volume_ml, 1),
                        "flag": flag, "seconds": round(time.time() - start, 2)}])
    log(subject, f"brain mask ({backend}) {result.volume_ml:.0f} mL in {time.time() - start:.1f} s"
        + (f"  WARNING: {flag}" if flag else ""))
