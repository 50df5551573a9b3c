"""Simulated clinical acquisition of one series from the phantom.

World space is the scanner frame (RAS+, mm, isocentre at the origin). A subject's head
is placed by ``subject_to_world`` (anatomical scaling + baseline pose); every series
adds its own rigid motion, gets its own axial (slightly oblique) voxel grid, a smooth
multiplicative bias field and Rician noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .phantom import Phantom
from .tumor import Tumor, composite, tumor_fields

__all__ = [
    "SeriesGeometry",
    "rotation",
    "rigid",
    "draw_subject_transform",
    "draw_motion",
    "draw_geometry",
    "grid_coords",
    "render_series",
    "scanner_effects",
]

# MNI brains are ~7% larger than typical native brains.
MNI_TO_NATIVE_SCALE = 0.93


@dataclass(frozen=True)
class SeriesGeometry:
    """Voxel grid of one series: ``affine`` maps (i, j, k) to world RAS mm.

    Axes follow the usual axial DICOM layout: i -> patient left, j -> posterior,
    k -> superior (up to a small oblique tilt).
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    slice_thickness: float

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


def rotation(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrix from (x, y, z) Euler angles in degrees (applied x, then y, then z)."""
    ax, ay, az = np.deg2rad(np.asarray(angles_deg, dtype=float))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rigid(rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, trans
    return m


def draw_subject_transform(rng: np.random.Generator, phantom: Phantom) -> np.ndarray:
    """Phantom (MNI mm) -> world: per-axis anatomical scaling, then baseline head pose."""
    scale = MNI_TO_NATIVE_SCALE * rng.uniform(0.96, 1.04, size=3)
    centre = rigid(np.eye(3), -phantom.head_centre_mm())
    pose = rigid(rotation(rng.uniform([-8, -3, -3], [8, 3, 3])), rng.uniform(-5, 5, size=3))
    return pose @ np.diag([*scale, 1.0]) @ centre


def draw_motion(rng: np.random.Generator, max_rot_deg: float = 8.0, max_trans_mm: float = 8.0) -> np.ndarray:
    """Rigid head motion of one series: random axis, angle <= max_rot_deg; shift <= max_trans_mm."""
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(0, max_rot_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)  # Rodrigues
    direction = rng.standard_normal(3)
    shift = direction / np.linalg.norm(direction) * max_trans_mm * np.cbrt(rng.uniform())
    return rigid(rot, shift)


def draw_geometry(rng: np.random.Generator, voxel_scale: float = 1.0) -> SeriesGeometry:
    """Clinical-looking axial grid: ~2 mm in-plane, 3-5 mm slices, FOV ~220 mm."""
    pixel = rng.uniform(1.8, 2.2) * voxel_scale
    thickness = rng.uniform(3.0, 5.0) * voxel_scale
    spacing = thickness * rng.uniform(1.0, 1.15)  # optional inter-slice gap
    fov_ap = rng.uniform(210.0, 230.0)
    fov_lr = fov_ap * rng.uniform(0.8, 0.9)
    coverage = rng.uniform(140.0, 160.0)
    shape = (
        max(int(round(fov_lr / pixel)), 8),
        max(int(round(fov_ap / pixel)), 8),
        max(int(round(coverage / spacing)), 4),
    )
    tilt = rotation([rng.uniform(-6.0, 6.0), 0.0, 0.0])  # oblique-axial planning
    axes = tilt @ np.diag([-pixel, -pixel, spacing])  # i -> L, j -> P, k -> S
    centre = np.array([0.0, 0.0, 8.0]) + rng.uniform(-5.0, 5.0, size=3)  # centred a bit high
    origin = centre - axes @ ((np.array(shape) - 1) / 2.0)
    return SeriesGeometry(shape=shape, affine=rigid(axes, origin), slice_thickness=float(thickness))


def _bias_field(rng: np.random.Generator, world: list[np.ndarray], max_amp: float) -> np.ndarray:
    """Smooth multiplicative field: random 2nd-order polynomial of world mm, scaled to +-max_amp."""
    x, y, z = (w / np.float32(100.0) for w in world)
    coef = rng.normal(0, 1, 9).astype(np.float32)
    poly = (coef[0] * x + coef[1] * y + coef[2] * z + coef[3] * x * x + coef[4] * y * y
            + coef[5] * z * z + coef[6] * x * y + coef[7] * x * z + coef[8] * y * z)
    poly = poly - poly.mean()
    return 1.0 + poly * np.float32(max_amp / max(float(np.abs(poly).max()), 1e-6))


def grid_coords(matrix: np.ndarray, shape: tuple[int, ...], start: tuple[int, ...] = (0, 0, 0)) -> list[np.ndarray]:
    """Coordinates ``matrix @ (i, j, k, 1)`` over a voxel box, one float32 array per axis."""
    axes = [np.arange(s0, s0 + n, dtype=np.float64) for s0, n in zip(start, shape)]
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    return [
        (matrix[r, 3] + matrix[r, 0] * grids[0] + matrix[r, 1] * grids[1] + matrix[r, 2] * grids[2]).astype(np.float32)
        for r in range(3)
    ]


def _sample(image: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    return ndimage.map_coordinates(image, np.stack(coords), order=1, mode="constant", cval=0.0, prefilter=False)


def render_series(
    rng: np.random.Generator,
    phantom: Phantom,
    tumor: Tumor,
    modality: str,
    geometry: SeriesGeometry,
    phantom_to_world: np.ndarray,
    *,
    noise_sigma: float = 0.03,
    bias_amp: float = 0.2,
    with_mask: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Render one series as float32 (WM ~ 1) and optionally the binary tumor mask (uint8).

    ``phantom_to_world`` includes subject scaling/pose and this series' motion.
    """
    shape = geometry.shape
    to_phantom_mm = np.linalg.inv(phantom_to_world) @ geometry.affine  # series voxel -> MNI mm
    to_phantom_vox = np.linalg.inv(phantom.affine) @ to_phantom_mm
    signal = _sample(phantom.contrasts[modality], grid_coords(to_phantom_vox, shape))
    mask = np.zeros(shape, dtype=np.uint8) if with_mask else None

    # Tumor + edema only inside a box of series voxels around the tumor centre.
    centre = (np.linalg.inv(to_phantom_mm) @ np.r_[tumor.centre, 1.0])[:3]
    half = tumor.reach_mm / np.linalg.norm(to_phantom_mm[:3, :3], axis=0) + 1.0
    lo = np.clip(np.floor(centre - half).astype(int), 0, shape)
    hi = np.clip(np.ceil(centre + half).astype(int) + 1, 0, shape)
    if np.all(hi > lo):
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        sub = tuple(int(b - a) for a, b in zip(lo, hi))
        pts = np.stack([c.ravel() for c in grid_coords(to_phantom_mm, sub, tuple(lo))], 1).astype(np.float64)
        parenchyma = _sample(phantom.parenchyma, grid_coords(to_phantom_vox, sub, tuple(lo))).ravel()
        fields = tumor_fields(tumor, pts)
        blended = composite(tumor, modality, signal[box].ravel(), parenchyma, fields)
        signal[box] = blended.reshape(sub)
        if mask is not None:
            mask[box] = (fields["rho"] < 1.0).reshape(sub)

    return scanner_effects(rng, signal, geometry, noise_sigma=noise_sigma, bias_amp=bias_amp), mask


def scanner_effects(
    rng: np.random.Generator, signal: np.ndarray, geometry: SeriesGeometry, *, noise_sigma: float, bias_amp: float
) -> np.ndarray:
    """A noise-free float32 image on ``geometry`` as the scanner returns it: times a smooth bias
    field, with Rician noise (the magnitude of a complex signal with Gaussian noise in both channels)."""
    shape = geometry.shape
    world = [np.broadcast_to(w, shape) for w in grid_coords(geometry.affine, shape)]
    signal *= _bias_field(rng, world, bias_amp * rng.uniform(0.5, 1.0))
    sigma = np.float32(noise_sigma * rng.uniform(0.8, 1.25))
    real = signal + sigma * rng.standard_normal(shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(shape, dtype=np.float32)
    return np.hypot(real, imag).astype(np.float32)
