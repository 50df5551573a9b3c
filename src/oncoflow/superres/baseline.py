"""Classical x2 interpolation along one axis onto the midway grid (see degrade): the baselines the
GAN is compared with, and what the GAN refines."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import make_interp_spline

#: Baseline name -> spline degree: linear and cubic B-spline (not-a-knot ends, exact for cubic
#: polynomials; degree n - 1 when there are fewer than 4 slices).
METHODS = {"linear": 1, "bspline": 3}


def interpolate(volume: np.ndarray, axis: int, method: str = "linear") -> np.ndarray:
    """``volume`` (n slices along ``axis``) on the 2n - 1 slice grid; source slices are returned
    unchanged (both splines interpolate)."""
    if method not in METHODS:
        raise ValueError(f"unknown interpolation {method!r} (choose from {', '.join(METHODS)})")
    n = volume.shape[axis]
    if n < 2:
        raise ValueError(f"{n} slice along axis {axis}: nothing to interpolate between")
    spline = make_interp_spline(np.arange(n, dtype=np.float64), volume.astype(np.float64),
                                k=min(METHODS[method], n - 1), axis=axis)
    out = spline(np.arange(2 * n - 1) / 2.0)  # output slice j sits at source position j / 2
    out = np.moveaxis(out, axis, axis)  # make_interp_spline keeps the interpolation axis in place
    index = [slice(None)] * volume.ndim
    index[axis] = slice(0, None, 2)
    out[tuple(index)] = volume  # source slices exactly
    return out.astype(np.float32)


def upsample_mask(mask: np.ndarray, axis: int) -> np.ndarray:
    """Nearest-neighbour mask on the 2n - 1 grid: source slices unchanged, a midway slice takes the
    slice below it (ties go down, so the volume grows by about half a slice at most)."""
    n = mask.shape[axis]
    index = np.arange(2 * n - 1) // 2
    return np.take(mask, index, axis=axis)
