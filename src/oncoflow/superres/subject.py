"""One subject's image and tumor mask on the x2 grid (radiomics variants sr and interp): the image
by the generator or by interpolation, the mask by nearest neighbour in both cases. Needs no torch,
so the interpolation control runs without loading it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

from oncoflow.superres.baseline import interpolate, upsample_mask
from oncoflow.superres.degrade import SuperResError, axis_index, upsampled_affine


def interpolate_subject(subject: str, image_path: Path, mask_path: Path, axes: list[str], out_image: Path,
                        out_mask: Path, method: str = "bspline") -> None:
    """The interpolation control of super-resolution: image x2 along each axis by ``method``
    (baseline.METHODS) on the generator's grid, mask by the same nearest-neighbour rule."""
    upsample_subject(subject, lambda data, axis: interpolate(data, axis, method), image_path, mask_path, axes,
                     out_image, out_mask)


def upsample_subject(subject: str, upsample_axis: Callable[[np.ndarray, int], np.ndarray], image_path: Path,
                     mask_path: Path, axes: list[str], out_image: Path, out_mask: Path) -> None:
    """Image x2 along each axis by ``upsample_axis(volume, axis)``, mask on the same grid (nearest
    neighbour), written with the upsampled affine."""
    image, mask_img = nib.load(str(image_path)), nib.load(str(mask_path))
    if image.shape[:3] != mask_img.shape[:3] or not np.allclose(image.affine, mask_img.affine, atol=1e-3):
        raise SuperResError(f"subject {subject!r}: tumor mask {mask_path} is not on the grid of {image_path}")
    data = np.asarray(image.dataobj, dtype=np.float32)
    mask = (np.asarray(mask_img.dataobj) > 0.5).astype(np.uint8)
    affine = image.affine
    for name in axes:
        axis = axis_index(name)
        if data.shape[axis] < 2:
            raise SuperResError(f"subject {subject!r}: {image_path} has {data.shape[axis]} slice along {name}")
        data, mask = upsample_axis(data, axis), upsample_mask(mask, axis)
        affine = upsampled_affine(affine, axis)
    header = image.header.copy()
    header.set_data_dtype(np.float32)
    out = nib.Nifti1Image(data.astype(np.float32), affine, header)
    out.set_qform(affine, code=int(image.header["qform_code"]) or 1)
    out.set_sform(affine, code=int(image.header["sform_code"]) or 1)
    nib.save(out, str(out_image))
    m = nib.Nifti1Image(mask, affine)
    m.set_qform(affine, code=1)
    m.set_sform(affine, code=1)
    nib.save(m, str(out_mask))
