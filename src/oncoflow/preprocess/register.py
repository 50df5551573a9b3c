"""Rigid (or affine) co-registration of each modality onto the reference modality's grid."""

from __future__ import annotations

from dataclasses import dataclass

import ants
import numpy as np

TRANSFORMS = ("Rigid", "Affine")
# `none`: the images are already co-registered (a pre-registered cohort, or series of one session
# without motion); they are only resampled onto the reference grid, once their fields of view are
# checked to lie in the same physical space.
NO_TRANSFORM = "none"
MIN_FOV_OVERLAP = 0.5  # per axis: share of the reference's extent the other image must cover


@dataclass
class Registration:
    warped: ants.ANTsImage
    transforms: list[str]
    similarity_before: float  # Mattes MI on the reference grid (more negative = better)
    similarity_after: float


MIN_MI_VOXELS = 4  # ITK's RecursiveGaussianImageFilter needs 4 voxels per axis


def mattes_mi(fixed: ants.ANTsImage, moving: ants.ANTsImage) -> float:
    """ANTs' Mattes mutual information after resampling ``moving`` onto ``fixed`` (no transform);
    NaN for a grid under 4 voxels along an axis (e.g. a 3-slice tumor-only export), where ITK's
    smoothing cannot run: the metric is a QC figure, not worth failing the subject for."""
    if min(fixed.shape) < MIN_MI_VOXELS:
        return float("nan")
    on_grid = ants.resample_image_to_target(moving, fixed, interp_type="linear")
    return float(ants.image_similarity(fixed, on_grid, metric_type="MattesMutualInformation"))


def register_to_reference(
    fixed: ants.ANTsImage,
    moving: ants.ANTsImage,
    *,
    transform: str = "Rigid",
    iterations: tuple[int, ...] = (100, 50, 10),
    seed: int = 1,
) -> Registration:
    """Mutual-information registration, centre-of-mass initialised, three resolution levels."""
    if transform not in TRANSFORMS:
        raise ValueError(f"registration transform must be one of {TRANSFORMS}, got {transform!r}")
    reg = ants.registration(
        fixed=fixed,
        moving=moving,
        type_of_transform=transform,
        aff_metric="mattes",
        aff_sampling=32,
        aff_iterations=iterations,
        aff_shrink_factors=(4, 2, 1)[: len(iterations)],
        aff_smoothing_sigmas=(2, 1, 0)[: len(iterations)],
        random_seed=seed,
    )
    warped = reg["warpedmovout"]
    return Registration(
        warped=warped,
        transforms=list(reg["fwdtransforms"]),
        similarity_before=mattes_mi(fixed, moving),
        similarity_after=float(
            ants.image_similarity(fixed, warped, metric_type="MattesMutualInformation")
        ),
    )


def identity_transform() -> ants.ANTsTransform:
    return ants.create_ants_transform(transform_type="AffineTransform", dimension=3)


def physical_box(img: ants.ANTsImage) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned (LPS mm) bounding box of the image's field of view (voxel edges)."""
    shape = np.asarray(img.shape, float)
    corners = np.array([[i, j, k] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5)
                        for k in (-0.5, shape[2] - 0.5)])
    points = np.asarray(img.origin) + (corners * np.asarray(img.spacing)) @ np.asarray(img.direction).T
    return points.min(0), points.max(0)


def fov_overlap(reference: ants.ANTsImage, other: ants.ANTsImage) -> np.ndarray:
    """Per physical axis (x, y, z), the share of the reference's field of view that ``other`` covers."""
    (lo_r, hi_r), (lo_o, hi_o) = physical_box(reference), physical_box(other)
    shared = np.clip(np.minimum(hi_r, hi_o) - np.maximum(lo_r, lo_o), 0, None)
    return shared / np.maximum(hi_r - lo_r, 1e-6)


def same_space_problem(reference: ants.ANTsImage, other: ants.ANTsImage) -> str | None:
    """Why ``other`` cannot be taken as already registered to ``reference`` (None when it can):
    its field of view must cover at least MIN_FOV_OVERLAP of the reference's along each axis."""
    overlap = fov_overlap(reference, other)
    if (overlap >= MIN_FOV_OVERLAP).all():
        return None
    (lo_r, hi_r), (lo_o, hi_o) = physical_box(reference), physical_box(other)
    axes = ", ".join(f"{a} {o:.0%}" for a, o in zip("xyz", overlap))
    return (f"field of view covers only {axes} of the reference's (needs {MIN_FOV_OVERLAP:.0%} along "
            f"each axis): box {np.round(lo_o, 1).tolist()}..{np.round(hi_o, 1).tolist()} mm vs "
            f"{np.round(lo_r, 1).tolist()}..{np.round(hi_r, 1).tolist()} mm")


def apply_to_mask(
    mask: ants.ANTsImage, reference: ants.ANTsImage, transforms: list[str] | None
) -> ants.ANTsImage:
    """Carry a label mask onto the reference grid (nearest label; identity when no transforms)."""
    if transforms:
        out = ants.apply_transforms(
            fixed=reference, moving=mask, transformlist=transforms, interpolator="genericLabel"
        )
    else:
        out = ants.resample_image_to_target(mask, reference, interp_type="genericLabel")
    return reference.new_image_like((out.numpy() > 0.5).astype("float32"))


def mean_displacement_mm(
    transform_a: ants.ANTsTransform, transform_b: ants.ANTsTransform, points: np.ndarray
) -> float:
    """Mean distance between where two transforms send the same physical points (N x 3)."""
    pa = np.array([transform_a.apply_to_point(tuple(p)) for p in points])
    pb = np.array([transform_b.apply_to_point(tuple(p)) for p in points])
    return float(np.linalg.norm(pa - pb, axis=1).mean())
