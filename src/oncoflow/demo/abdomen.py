"""Abdominal phantom for the liver study shape: one arterial-phase series with a liver lesion.

The anatomy is analytic (ellipses and ellipsoids in body mm, smooth partial-volume edges), so it is
evaluated exactly on each series grid: body outline with subcutaneous fat and muscle wall, liver,
spleen, kidneys, aorta and spine. One lesion lies inside the liver. As for the brain tumor
(``tumor.py``), a latent ``aggressiveness`` a drives the label-dependent phenotype:

* label 1 (responder-like, a low): smaller, homogeneous, strong arterial hyper-enhancement;
* label 0 (non-responder-like, a high): larger, weaker enhancement, a non-enhancing (necrotic) core.

About ``AMBIGUOUS_FRACTION`` of subjects draw a independently of the label (``draw_aggressiveness``). The clinical covariates
``tumor_diameter`` (mm, the lesion's mean diameter) and ``arterial_enhancement`` (lesion / liver
signal ratio in the arterial phase) follow from the lesion, so they correlate with the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .acquisition import SeriesGeometry, draw_motion, grid_coords, rigid, rotation, scanner_effects
from .tumor import Latent, draw_aggressiveness

__all__ = ["ORGAN_INTENSITY", "Lesion", "draw_abdomen_geometry", "draw_lesion", "render_abdomen"]

# Arterial-phase (fat-suppressed T1 gradient echo, contrast in the arteries) relative signal.
ORGAN_INTENSITY: dict[str, float] = {
    "visceral": 0.30, "fat": 0.12, "muscle": 0.45, "liver": 0.55, "spleen": 0.85,
    "kidney": 1.30, "aorta": 1.90, "spine": 0.35,
}
# Body space is RAS mm (+x: the patient's right, +y: anterior, +z: superior), origin mid-body.
LIVER_CENTRE = np.array([55.0, 10.0, 20.0])  # right upper abdomen
LIVER_AXES = np.array([70.0, 65.0, 65.0])
EDGE_MM = 1.2


@dataclass(frozen=True)
class Lesion(Latent):
    """One liver lesion (centre in body mm) and its phenotype."""

    radius: float  # mm
    enhancement: float  # lesion / liver signal ratio in the arterial phase
    necrosis: float  # 0..1, weight of the non-enhancing core

    @property
    def diameter_mm(self) -> float:
        return 2.0 * self.radius


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def _inside(points: np.ndarray, centre: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Soft indicator (0..1) of an ellipsoid at points (N, 3); an infinite axis makes a cylinder."""
    q = np.linalg.norm((points - centre) / axes, axis=1)
    return _sigmoid((1.0 - q) * float(np.min(axes)) / EDGE_MM)


def _anatomy(points: np.ndarray, body_axes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lesion-free arterial-phase signal and the soft liver map at points (N, 3) in body mm."""
    inf = np.inf
    body = _inside(points, np.zeros(3), np.array([body_axes[0], body_axes[1], inf]))
    inner = _inside(points, np.zeros(3), np.array([body_axes[0] - 18, body_axes[1] - 18, inf]))
    cavity = _inside(points, np.zeros(3), np.array([body_axes[0] - 26, body_axes[1] - 26, inf]))
    organs = {
        "liver": _inside(points, LIVER_CENTRE, LIVER_AXES),
        "spleen": _inside(points, np.array([-85.0, -30.0, 30.0]), np.array([30.0, 45.0, 50.0])),
        "kidney": np.maximum(_inside(points, np.array([-70.0, -55.0, -30.0]), np.array([28.0, 25.0, 50.0])),
                             _inside(points, np.array([70.0, -55.0, -40.0]), np.array([28.0, 25.0, 50.0]))),
        "aorta": _inside(points, np.array([-15.0, -50.0, 0.0]), np.array([11.0, 11.0, inf])),
        "spine": _inside(points, np.array([0.0, -80.0, 0.0]), np.array([22.0, 20.0, inf])),
    }
    signal = (body - inner) * ORGAN_INTENSITY["fat"] + (inner - cavity) * ORGAN_INTENSITY["muscle"]
    rest = cavity.copy()
    for name, weight in organs.items():
        w = np.minimum(weight, rest)
        signal = signal + w * ORGAN_INTENSITY[name]
        rest = rest - w
    signal = signal + rest * ORGAN_INTENSITY["visceral"]
    return signal.astype(np.float32), np.minimum(organs["liver"], cavity)


def draw_lesion(rng: np.random.Generator, label: int) -> Lesion:
    """A lesion with a label-dependent phenotype, placed well inside the liver ellipsoid."""
    ambiguous, a = draw_aggressiveness(rng, label)
    radius = float(np.clip(8.0 + 16.0 * a + rng.normal(0, 2.5), 6.0, 26.0))
    # Centre: a random point of the shrunken liver, so the lesion (and its edge) stays inside.
    room = 1.0 - (radius + 4 * EDGE_MM) / LIVER_AXES
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    centre = LIVER_CENTRE + direction * room * LIVER_AXES * rng.uniform(0.0, 0.8) ** (1 / 3)
    return Lesion(
        label=int(label), ambiguous=ambiguous, aggressiveness=float(a), centre=centre, radius=radius,
        enhancement=float(np.clip(2.2 - 1.1 * a + rng.normal(0, 0.1), 0.8, 2.6)),
        necrosis=float(np.clip((a - 0.45) * 1.6 + rng.normal(0, 0.1), 0.0, 1.0)),
    )


def draw_abdomen_geometry(rng: np.random.Generator, voxel_scale: float = 1.0) -> SeriesGeometry:
    """Axial 3D gradient-echo grid: ~1.6 mm in-plane, 3-4 mm slices, FOV ~380 mm, ~180 mm long."""
    pixel = rng.uniform(1.4, 1.8) * voxel_scale
    spacing = rng.uniform(3.0, 4.0) * voxel_scale
    fov_lr = rng.uniform(370.0, 400.0)
    fov_ap = fov_lr * rng.uniform(0.75, 0.85)
    coverage = rng.uniform(170.0, 190.0)
    shape = (max(int(round(fov_lr / pixel)), 8), max(int(round(fov_ap / pixel)), 8),
             max(int(round(coverage / spacing)), 4))
    axes = np.diag([-pixel, -pixel, spacing])
    centre = np.array([0.0, 0.0, 20.0]) + rng.uniform(-5.0, 5.0, size=3)
    origin = centre - axes @ ((np.array(shape) - 1) / 2.0)
    return SeriesGeometry(shape=shape, affine=rigid(axes, origin), slice_thickness=float(spacing))


def render_abdomen(
    rng: np.random.Generator, lesion: Lesion, geometry: SeriesGeometry, *, noise_sigma: float, bias_amp: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arterial-phase image (float32, liver ~ 0.55), lesion mask and liver mask (uint8) on ``geometry``."""
    body_axes = np.array([rng.uniform(150.0, 175.0), rng.uniform(105.0, 125.0)])
    pose = rigid(rotation([0.0, 0.0, rng.uniform(-4.0, 4.0)]), rng.uniform(-6, 6, size=3)) @ draw_motion(rng, 2.0, 3.0)
    to_body = np.linalg.inv(pose) @ geometry.affine  # series voxel -> body mm
    points = np.stack([c.ravel() for c in grid_coords(to_body, geometry.shape)], 1).astype(np.float64)
    signal, liver = _anatomy(points, body_axes)
    rho = np.linalg.norm(points - lesion.centre, axis=1) / lesion.radius
    inside = _sigmoid((1.0 - rho) * lesion.radius / EDGE_MM) * liver
    core = lesion.necrosis * _sigmoid((0.55 - rho) * lesion.radius / EDGE_MM)
    lesion_signal = ORGAN_INTENSITY["liver"] * ((1.0 - core) * lesion.enhancement + core * 0.45)
    signal = (signal * (1.0 - inside) + inside * lesion_signal).astype(np.float32)
    image = scanner_effects(rng, signal.reshape(geometry.shape), geometry, noise_sigma=noise_sigma, bias_amp=bias_amp)
    mask = ((rho < 1.0) & (liver > 0.5)).reshape(geometry.shape).astype(np.uint8)
    return image, mask, (liver > 0.5).reshape(geometry.shape).astype(np.uint8)
