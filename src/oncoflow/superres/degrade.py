"""Axes, grids and the degradation the super-resolution model learns to undo.

Geometry of a x2 upsampling along one axis: the n source slices keep their positions and a new slice
is made midway between each two neighbours, so the output has 2n - 1 slices at half the spacing and
the same origin (source slice i is output slice 2i). The training pairs come from the cohort's own
volumes: keep every other slice (positions 0, 2, 4, ...: twice the spacing) and learn to restore the
dropped ones (1, 3, ...), which are the truth PSNR/SSIM are measured on.
"""

from __future__ import annotations

import numpy as np

AXES = {"x": 0, "y": 1, "z": 2}


class SuperResError(ValueError):
    pass


def axis_index(axis: str) -> int:
    if axis not in AXES:
        raise SuperResError(f"unknown axis {axis!r} (choose from {', '.join(AXES)})")
    return AXES[axis]


def degrade(volume: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(low-resolution volume, high-resolution truth on the upsampled grid): every other slice of
    ``volume`` along ``axis``, and ``volume`` cut to the 2m - 1 slices that grid covers."""
    n = volume.shape[axis]
    if n < 3:
        raise SuperResError(f"{n} slice(s) along axis {axis}: at least 3 are needed to drop every other one")
    m = (n + 1) // 2
    low = np.take(volume, np.arange(0, n, 2), axis=axis)
    truth = np.take(volume, np.arange(2 * m - 1), axis=axis)
    return low, truth


def upsampled_affine(affine: np.ndarray, axis: int) -> np.ndarray:
    """The affine of the x2 grid: the axis' column halved, origin unchanged."""
    out = np.array(affine, dtype=float, copy=True)
    out[:3, axis] /= 2.0
    return out


def new_slices(axis: int, n_out: int) -> tuple[slice, ...]:
    """Index of the synthesised (odd) slices of an upsampled volume along ``axis``."""
    index = [slice(None)] * 3
    index[axis] = slice(1, n_out, 2)
    return tuple(index)


def split_subjects(subjects: list[str], *, heldout_fraction: float, max_train: int | None,
                   seed: int) -> tuple[list[str], list[str]]:
    """(train, held out): a seeded shuffle of the (non-external) subjects; at least one of each.
    Super-resolution is label-free: no label is read, the held-out subjects only measure quality."""
    subjects = sorted(subjects)
    if len(subjects) < 2:
        raise SuperResError(f"{len(subjects)} non-external subject(s): super-resolution needs at least 2 "
                            "(one to train on, one held out)")
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(len(subjects))]
    n_held = min(len(subjects) - 1, max(1, int(round(heldout_fraction * len(subjects)))))
    held, rest = order[:n_held], order[n_held:]
    train = rest[:max_train] if max_train else rest
    return sorted(train), sorted(held)
