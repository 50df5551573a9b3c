"""Atlas space (preprocess.atlas, off by default): the brain-extracted reference image registered to a
brain template, and with its transform every modality, the brain mask and the tumor mask, for
whole-brain models that expect one anatomy per voxel.

Templates: ``mni152`` is nilearn's MNI152 2009 T1 template (skull-stripped, shipped inside nilearn, 1 or
2 mm) with its brain mask; any other value is a user's NIfTI template file (brain only) whose brain
mask is ``template_mask`` or, without one, its nonzero voxels. Registration: ANTs, Mattes mutual
information, brain onto brain (both skull-stripped), Rigid or Affine.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import ants
import nibabel as nib
import numpy as np

from oncoflow.preprocess.brain import mask_dice
from oncoflow.preprocess.errors import PreprocessError
from oncoflow.preprocess.images import read_image, write_image
from oncoflow.preprocess.register import mattes_mi
from oncoflow.preprocess.subject import log, write_tsv

MNI152 = "mni152"


def _from_nib(img: nib.Nifti1Image) -> ants.ANTsImage:
    with tempfile.TemporaryDirectory(prefix="oncoflow-atlas-") as tmp:
        path = Path(tmp) / "template.nii.gz"
        nib.save(img, path)
        return ants.image_read(str(path), pixeltype="float")


def load_template(template: str, *, resolution_mm: int = 1,
                  template_mask: str | None = None) -> tuple[ants.ANTsImage, ants.ANTsImage]:
    """(template image, its brain mask) for ``template`` (``mni152`` or a NIfTI file)."""
    if template == MNI152:
        from nilearn.datasets import load_mni152_brain_mask, load_mni152_template

        image = _from_nib(load_mni152_template(resolution=resolution_mm))
        mask = _from_nib(load_mni152_brain_mask(resolution=resolution_mm))
        return image, ants.resample_image_to_target(mask, image, interp_type="nearestNeighbor")
    path = Path(template)
    if not path.is_file():
        raise FileNotFoundError(f"config: preprocess.atlas.template: {path} is neither 'mni152' nor a "
                                "NIfTI file")
    image = ants.image_read(str(path), pixeltype="float")
    if template_mask:
        mask = ants.image_read(str(template_mask), pixeltype="float")
        if mask.shape != image.shape:
            raise ValueError(f"config: preprocess.atlas.template_mask {template_mask} has shape {mask.shape}, "
                             f"the template {path} {image.shape}")
    else:
        mask = image.new_image_like((image.numpy() > 0).astype("float32"))
    return image, mask


def register_to_atlas(
    subject: str,
    brain_images: dict[str, Path],
    brain_mask: Path,
    tumor_mask: Path | None,
    *,
    reference: str,
    outputs: dict[str, Path],
    mask_out: Path,
    tumor_out: Path,
    transform_out: Path,
    report: Path,
    template_mask_out: Path | None = None,
    template: str = MNI152,
    template_mask: str | None = None,
    resolution_mm: int = 1,
    transform: str = "Affine",
) -> dict[str, object]:
    """Register the brain-extracted ``reference`` onto the template and carry every modality
    (linear), the brain mask and the tumor mask (nearest label) onto the template grid. Without a
    tumor mask the atlas tumor mask is all zero. Returns and writes (``report``) the brain-mask Dice
    with the template's brain mask, the mutual information before/after and the seconds taken;
    ``template_mask_out``: the template's brain mask, for the QC montage's outline."""
    start = time.time()
    fixed, fixed_mask = load_template(template, resolution_mm=resolution_mm, template_mask=template_mask)
    moving = read_image(brain_images[reference], subject)
    reg = ants.registration(fixed=fixed, moving=moving, type_of_transform=transform, aff_metric="mattes",
                            random_seed=1)
    transforms = reg["fwdtransforms"]
    if not transforms:
        raise PreprocessError(subject, brain_images[reference], f"registration to the atlas ({transform}) "
                              "returned no transform")
    for modality, src in brain_images.items():
        warped = ants.apply_transforms(fixed=fixed, moving=read_image(src, subject), transformlist=transforms,
                                       interpolator="linear")
        write_image(warped, outputs[modality])

    def carry(path: Path | None) -> ants.ANTsImage:
        if path is None:
            return fixed.new_image_like(np.zeros(fixed.shape, "float32"))
        mask = ants.image_read(str(path), pixeltype="float")
        moved = ants.apply_transforms(fixed=fixed, moving=(mask > 0.5) * 1.0, transformlist=transforms,
                                      interpolator="genericLabel")
        return fixed.new_image_like((moved.numpy() > 0.5).astype("float32"))

    brain = carry(brain_mask)
    tumor = carry(tumor_mask)
    write_image(brain, mask_out)
    write_image(tumor, tumor_out)
    if template_mask_out is not None:
        write_image(fixed_mask, template_mask_out)
    Path(transform_out).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(transforms[0], transform_out)
    dice = mask_dice(brain.numpy() > 0.5, fixed_mask.numpy() > 0.5)
    voxel_ml = float(np.prod(fixed.spacing)) / 1000.0
    row = {"subject": subject, "template": template, "transform": transform,
           "brain_dice_template": round(dice, 4),
           "mi_before": round(mattes_mi(fixed, ants.resample_image_to_target(moving, fixed)), 5),
           "mi_after": round(mattes_mi(fixed, ants.apply_transforms(fixed=fixed, moving=moving,
                                                                    transformlist=transforms)), 5),
           "tumor_ml": round(float(tumor.numpy().sum()) * voxel_ml, 2) if tumor_mask is not None else "",
           "seconds": round(time.time() - start, 2)}
    write_tsv(report, [row])
    log(subject, f"{reference} -> {template} ({transform}): brain-mask Dice {dice:.3f} with the template's, "
        f"MI {row['mi_before']} -> {row['mi_after']} in {row['seconds']} s")
    return row
