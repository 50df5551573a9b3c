"""Head and rough brain masks from intensities and mm-based morphology."""

from __future__ import annotations

import ants
import numpy as np
from scipy import ndimage


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold on a 1D sample (between-class variance maximum)."""
    hist, edges = np.histogram(values, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centers[int(np.argmax(between))])


def ball(radius_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    """Ellipsoidal structuring element that is a ball of radius_mm in physical space."""
    half = [max(int(np.floor(radius_mm / s)), 0) for s in spacing]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    dist = sum((g * s / max(radius_mm, 1e-6)) ** 2 for g, s in zip(grids, spacing))
    return dist <= 1.0


def largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask.astype(bool)
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return labels == (int(np.argmax(sizes)) + 1)


def fill_holes_slicewise(mask: np.ndarray) -> np.ndarray:
    """Fill holes in 3D and then in each axial slice (closes sinuses and ventricles cut open)."""
    mask = ndimage.binary_fill_holes(mask)
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    return mask


def head_mask_array(arr: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Foreground (head) by Otsu on the nonzero intensities, closed and hole-filled."""
    values = arr[arr > 0]
    if values.size == 0:
        return np.zeros(arr.shape, bool)
    # Otsu on a log-ish scale is robust to the long bright tail of fat and vessels.
    thr = otsu_threshold(np.sqrt(values))
    mask = np.sqrt(np.clip(arr, 0, None)) > thr * 0.5
    mask = ndimage.binary_closing(mask, ball(4.0, spacing), iterations=1)
    mask = largest_component(mask)
    return fill_holes_slicewise(mask)


def head_mask(img: ants.ANTsImage) -> ants.ANTsImage:
    arr = head_mask_array(img.numpy(), tuple(img.spacing))
    return img.new_image_like(arr.astype("float32"))
