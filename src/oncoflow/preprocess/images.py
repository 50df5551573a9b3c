"""Reading and writing images with ANTsPy, with errors that name subject and file."""

from __future__ import annotations

from pathlib import Path

import ants
import nibabel as nib
import numpy as np

from oncoflow.atomic import atomic_write
from oncoflow.preprocess.errors import PreprocessError


def read_image(path: Path | str, subject: str) -> ants.ANTsImage:
    """Read a 3D image as float32; reject empty, non-3D or constant images."""
    path = Path(path)
    if not path.exists():
        raise PreprocessError(subject, path, "file not found")
    if path.name.endswith((".nii", ".nii.gz")):
        _check_nifti_payload(path, subject)
    try:
        img = ants.image_read(str(path), pixeltype="float")
    except Exception as exc:  # ITK raises bare RuntimeErrors for unreadable files
        raise PreprocessError(subject, path, f"cannot read image ({exc})") from exc
    if img.dimension != 3:
        raise PreprocessError(subject, path, f"expected a 3D image, got {img.dimension}D")
    arr = img.numpy()
    problem = intensity_problem(arr)
    if problem:
        raise PreprocessError(subject, path, f"image has {problem} (check its scaling: scl_slope, "
                              "RescaleSlope, data type)")
    if float(arr.max()) == float(arr.min()):
        raise PreprocessError(subject, path, "image is constant")
    return img


def _check_nifti_payload(path: Path, subject: str) -> None:
    """ITK silently zero-fills a truncated .nii.gz and reads NaN/inf voxels as 0; nibabel sees both."""
    try:
        data = np.asanyarray(nib.load(path).dataobj)
    except Exception as exc:  # ImageFileError, EOFError, zlib/gzip errors, ...
        raise PreprocessError(subject, path, f"cannot read image ({exc})") from exc
    if not np.isfinite(data).all():
        raise PreprocessError(subject, path, "image contains NaN or infinite values")


# Beyond this a float32 intensity has left any scanner's range (MR magnitudes are < 1e7) and the
# next step's sums overflow to inf: stop where it happened, not three rules later in scikit-learn.
MAX_ABS_INTENSITY = 1e20


def intensity_problem(arr: np.ndarray) -> str:
    """What is wrong with an image's intensities ('' when finite and within MAX_ABS_INTENSITY)."""
    bad = int(arr.size - np.isfinite(arr).sum())
    if bad:
        return f"{bad} NaN or infinite voxel(s)"
    peak = float(np.abs(arr).max()) if arr.size else 0.0
    return f"intensities up to {peak:.3g}, beyond {MAX_ABS_INTENSITY:g}" if peak > MAX_ABS_INTENSITY else ""


def write_image(img: ants.ANTsImage, path: Path | str, subject: str = "") -> None:
    """All-or-nothing write (oncoflow.atomic); refuses non-finite or absurd intensities, naming the
    subject and the image (its file name is the modality)."""
    path = Path(path)
    problem = intensity_problem(img.numpy())
    if problem:
        raise PreprocessError(subject or path.parent.parent.name, path,
                              f"modality {path.name.split('.')[0]}: this step produced {problem}; check the "
                              "input image's scaling (scl_slope, RescaleSlope) and data type")
    with atomic_write(path) as tmp:
        ants.image_write(img, str(tmp))


def same_grid(a: ants.ANTsImage, b: ants.ANTsImage, tol: float = 1e-3) -> bool:
    """True when two images share shape, spacing, origin and direction."""
    return (
        a.shape == b.shape
        and np.allclose(a.spacing, b.spacing, atol=tol)
        and np.allclose(a.origin, b.origin, atol=tol)
        and np.allclose(a.direction, b.direction, atol=tol)
    )
