"""Reading and writing images with ANTsPy, with errors that name subject and file."""

from __future__ import annotations

from pathlib import Path

import ants
import nibabel as nib
import numpy as np

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
    if not np.isfinite(arr).all():
        raise PreprocessError(subject, path, "image contains NaN or infinite values")
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


def write_image(img: ants.ANTsImage, path: Path | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ants.image_write(img, str(path))


def same_grid(a: ants.ANTsImage, b: ants.ANTsImage, tol: float = 1e-3) -> bool:
    """True when two images share shape, spacing, origin and direction."""
    return (
        a.shape == b.shape
        and np.allclose(a.spacing, b.spacing, atol=tol)
        and np.allclose(a.origin, b.origin, atol=tol)
        and np.allclose(a.direction, b.direction, atol=tol)
    )
