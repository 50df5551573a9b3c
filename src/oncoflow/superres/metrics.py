"""PSNR and SSIM of synthesised slices against the true ones (scikit-image's implementations)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from oncoflow.superres.degrade import new_slices


def quality(truth: np.ndarray, estimate: np.ndarray, axis: int) -> dict[str, float]:
    """PSNR (dB, over every voxel of the synthesised slices) and mean 2D SSIM over those slices.
    The data range is the true volume's intensity range, the same for every method compared."""
    index = new_slices(axis, truth.shape[axis])
    t, e = truth[index].astype(np.float64), estimate[index].astype(np.float64)
    data_range = float(truth.max() - truth.min()) or 1.0
    psnr = float(peak_signal_noise_ratio(t, e, data_range=data_range))
    t2, e2 = np.moveaxis(t, axis, 0), np.moveaxis(e, axis, 0)
    ssim = [structural_similarity(a, b, data_range=data_range) for a, b in zip(t2, e2)]
    return {"psnr": psnr, "ssim": float(np.mean(ssim)), "slices": int(t2.shape[0])}
