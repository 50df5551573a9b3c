"""Per-subject tumor with a noisy, label-dependent imaging phenotype.

The tumor is an analytic field in phantom (MNI mm) space: a randomly rotated
ellipsoid whose boundary is perturbed by a few low-frequency plane waves, so it can be
evaluated exactly at any series voxel. A single latent ``aggressiveness`` a in [0, 1]
drives the phenotype:

* label 0 ("IDH-wildtype-like", a high): enhancing rim on t1ce around a necrotic core
  (dark on t1ce, bright on t2), wide surrounding edema;
* label 1 ("IDH-mutant-like", a low): no enhancement, homogeneously bright on t2 with a
  relatively dark centre and bright rim on FLAIR (T2-FLAIR mismatch), little edema.

About ``AMBIGUOUS_FRACTION`` of subjects draw ``a`` independently of their label, and
every feature gets its own jitter, so the label is learnable but not perfectly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .phantom import MODALITIES, Phantom

__all__ = ["AMBIGUOUS_FRACTION", "Latent", "Tumor", "composite", "draw_aggressiveness", "draw_tumor", "tumor_fields"]

AMBIGUOUS_FRACTION = 0.15

# Relative signal per compartment, order as MODALITIES (t1, t1ce, t2, flair).
SOLID = np.array([0.62, 0.62, 1.05, 1.05])
NECROSIS = np.array([0.35, 0.33, 1.40, 0.75])
EDEMA = np.array([0.78, 0.78, 0.95, 1.15])
ENHANCEMENT = 0.95  # added to SOLID on t1ce, times ``enhancement``
MISMATCH_T2 = 0.30  # added to SOLID on t2, times ``mismatch``
MISMATCH_FLAIR = 0.55  # removed from the FLAIR centre, times ``mismatch``


@dataclass(frozen=True)
class Latent:
    """What every synthetic lesion has: its label, whether its phenotype ignores the label
    (``ambiguous``), the latent aggressiveness that drives the phenotype, and its centre."""

    label: int
    ambiguous: bool
    aggressiveness: float
    centre: np.ndarray  # (3,) mm


@dataclass(frozen=True)
class Tumor(Latent):
    """Geometry (MNI mm) and phenotype of one subject's tumor."""

    rotation: np.ndarray  # (3, 3), columns = ellipsoid axes
    radii: np.ndarray  # (3,) mm
    waves: np.ndarray  # (n, 3) wave vectors (rad/mm) perturbing the boundary
    phases: np.ndarray  # (n,)
    amplitudes: np.ndarray  # (n,)
    texture_waves: np.ndarray  # (m, 3) shorter waves for internal heterogeneity
    texture_phases: np.ndarray  # (m,)
    enhancement: float  # 0..1
    necrosis: float  # 0..1, weight of the necrotic core
    core_fraction: float  # core radius / tumor radius
    mismatch: float  # 0..1 T2-FLAIR mismatch strength
    edema_scale: float  # edema radius / tumor radius

    @property
    def mean_radius(self) -> float:
        return float(np.cbrt(np.prod(self.radii)))

    @property
    def reach_mm(self) -> float:
        """Radius of a sphere around ``centre`` containing tumor and edema."""
        # Boundary perturbation is <= 30%, so everything lies within |q| < 1.43 * edema_scale.
        return float(self.radii.max() * self.edema_scale * 1.45 + 6.0)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _random_waves(rng: np.random.Generator, n: int, wavelength: tuple[float, float]) -> np.ndarray:
    dirs = rng.standard_normal((n, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return dirs * (2 * np.pi / rng.uniform(*wavelength, size=(n, 1)))


def draw_tumor(rng: np.random.Generator, phantom: Phantom, label: int) -> Tumor:
    """Draw tumor geometry inside the white matter and a label-dependent phenotype."""
    radius = rng.uniform(8.0, 15.0)
    radii = radius * rng.uniform(0.8, 1.2, size=3)
    radii *= radius / np.cbrt(np.prod(radii))

    # Centre: a deep white-matter voxel, above the brainstem, with room for the tumor.
    zmm = phantom.affine[2, 2] * np.arange(phantom.shape[2]) + phantom.affine[2, 3]
    wm_above_brainstem = (phantom.tissues["wm"] > 0.8) & (zmm > -12.0)[None, None, :]
    for margin in (6.0, 3.0, 0.0, -np.inf):  # relax only if nothing is deep enough
        cand = np.argwhere(wm_above_brainstem & (phantom.brain_distance_mm >= radii.max() + margin))
        if len(cand):
            break
    vox = cand[rng.integers(len(cand))].astype(float) + rng.uniform(-0.5, 0.5, size=3)
    centre = (phantom.affine @ np.r_[vox, 1.0])[:3]

    ambiguous, a = draw_aggressiveness(rng, label)

    def feat(lo: float, hi: float) -> float:
        """Map a (jittered) aggressiveness ramp lo..hi onto 0..1."""
        return float(np.clip((a + rng.normal(0, 0.08) - lo) / (hi - lo), 0, 1))

    n_waves = 5
    return Tumor(
        label=int(label),
        ambiguous=ambiguous,
        aggressiveness=float(a),
        centre=centre,
        rotation=_random_rotation(rng),
        radii=radii,
        waves=_random_waves(rng, n_waves, (12.0, 30.0)),
        phases=rng.uniform(0, 2 * np.pi, n_waves),
        amplitudes=rng.uniform(0.02, 0.06, n_waves),
        texture_waves=_random_waves(rng, 8, (6.0, 14.0)),
        texture_phases=rng.uniform(0, 2 * np.pi, 8),
        enhancement=feat(0.35, 0.85),
        necrosis=feat(0.45, 0.85),
        core_fraction=float(rng.uniform(0.45, 0.65)),
        mismatch=1.0 - feat(0.1, 0.6),
        edema_scale=float(1.15 + 0.9 * np.clip(a + rng.normal(0, 0.1), 0, 1)),
    )


def draw_aggressiveness(rng: np.random.Generator, label: int) -> tuple[bool, float]:
    """(ambiguous, a): a in [0.55, 1] for label 0, [0, 0.45] for label 1, or, for about
    AMBIGUOUS_FRACTION of subjects, anywhere in [0, 1] whatever the label."""
    ambiguous = bool(rng.random() < AMBIGUOUS_FRACTION)
    if ambiguous:  # phenotype unrelated to the label
        return ambiguous, rng.uniform(0.0, 1.0)
    return ambiguous, rng.uniform(0.55, 1.0) if label == 0 else rng.uniform(0.0, 0.45)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def tumor_fields(tumor: Tumor, points_mm: np.ndarray) -> dict[str, np.ndarray]:
    """Normalised radius ``rho`` (<1 inside) and soft compartment weights at points (N, 3)."""
    d = points_mm - tumor.centre
    q = (d @ tumor.rotation) / tumor.radii
    perturb = np.sin(d @ tumor.waves.T + tumor.phases) @ tumor.amplitudes
    rho = np.linalg.norm(q, axis=1) * (1.0 + perturb)
    r = tumor.mean_radius
    edge = 0.8  # mm, partial-volume width of boundaries
    rho_edema = np.linalg.norm(q, axis=1) * (1.0 - perturb) / tumor.edema_scale
    texture = 1.0 + 0.025 * np.sin(d @ tumor.texture_waves.T + tumor.texture_phases).sum(1)
    return {
        "rho": rho,
        "tumor": _sigmoid((1.0 - rho) * r / edge),
        "core": tumor.necrosis * _sigmoid((tumor.core_fraction - rho) * r / edge),
        "centre": _sigmoid((0.75 - rho) * r / 1.5),
        "edema": _sigmoid((1.0 - rho_edema) * r * tumor.edema_scale / 2.0),
        "texture": texture,
    }


def composite(
    tumor: Tumor, modality: str, anatomy: np.ndarray, parenchyma: np.ndarray, fields: dict[str, np.ndarray]
) -> np.ndarray:
    """Blend tumor, necrosis and edema into the tumor-free ``anatomy`` signal."""
    m = MODALITIES.index(modality)
    solid = SOLID[m]
    if modality == "t1ce":
        solid = solid + ENHANCEMENT * tumor.enhancement
    elif modality == "t2":
        solid = solid + MISMATCH_T2 * tumor.mismatch
    elif modality == "flair":
        solid = solid - MISMATCH_FLAIR * tumor.mismatch * fields["centre"]
    core = fields["core"]
    inside = ((1.0 - core) * solid + core * NECROSIS[m]) * fields["texture"]
    wt = fields["tumor"]
    we = fields["edema"] * np.clip(parenchyma, 0, 1) * (1.0 - wt)
    return anatomy * (1.0 - wt - we) + we * EDEMA[m] + wt * inside
