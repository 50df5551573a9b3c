"""Head phantom on the (padded) 2 mm MNI152 grid: tissue maps and four MR contrasts.

Brain tissue (GM/WM/CSF) comes from nilearn's bundled MNI152 templates (loaded
offline). Around the brain we add a CSF rim, a skull (cortical bone / fatty diploe /
cortical bone) and a scalp (skin, subcutaneous fat, galea) using mm-based distance
maps, so that brain extraction has something to remove. The phantom is identical for
every subject; subjects differ by scaling, pose, tumor and acquisition.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

__all__ = ["MODALITIES", "TISSUE_INTENSITY", "Phantom", "load_phantom"]

MODALITIES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")

# Relative signal per tissue (WM on T1 == 1), order as MODALITIES.
TISSUE_INTENSITY: dict[str, tuple[float, float, float, float]] = {
    "wm": (1.00, 1.00, 0.40, 0.55),
    "gm": (0.70, 0.72, 0.60, 0.75),
    "csf": (0.25, 0.25, 1.50, 0.10),
    "bone": (0.04, 0.04, 0.04, 0.04),  # cortical bone + dura: no signal
    "marrow": (0.80, 0.82, 0.60, 0.50),  # fatty diploe
    "fat": (1.25, 1.25, 0.95, 0.85),  # subcutaneous scalp fat
    "skin": (0.55, 0.62, 0.35, 0.45),  # skin / galea / muscle
}
# Post-contrast enhancement added on t1ce (dural sinus, dura, choroid plexus).
VESSEL_ENHANCEMENT = 0.9

PAD_VOXELS = 13  # 26 mm of padding on each side of the 2 mm template grid
VOXEL_MM = 2.0


@dataclass(frozen=True)
class Phantom:
    """Phantom arrays on a padded 2 mm grid (``affine``: voxel -> MNI mm, RAS+)."""

    affine: np.ndarray
    tissues: dict[str, np.ndarray]  # fractional tissue maps, float32
    brain_mask: np.ndarray  # MNI brain mask (bool)
    head_mask: np.ndarray  # anything with signal: brain + CSF + skull + scalp (bool)
    vessels: np.ndarray  # t1ce enhancement weight (float32)
    parenchyma: np.ndarray  # where edema can spread: WM + 0.6 GM (float32)
    contrasts: dict[str, np.ndarray]  # modality -> float32 image, tumor-free
    brain_distance_mm: np.ndarray  # depth inside the brain mask (mm)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.brain_mask.shape  # type: ignore[return-value]

    def head_centre_mm(self) -> np.ndarray:
        """Centre of the head bounding box in MNI mm."""
        idx = np.argwhere(self.head_mask)
        centre_vox = (idx.min(0) + idx.max(0)) / 2.0
        return (self.affine @ np.r_[centre_vox, 1.0])[:3]


def _smoothstep(x: np.ndarray, width: float = 0.7) -> np.ndarray:
    """Logistic step 0 -> 1 around x = 0 (x in mm), for partial-volume edges."""
    return 1.0 / (1.0 + np.exp(-np.clip(x / width, -30, 30)))


def _ball(radius_mm: float) -> np.ndarray:
    r = int(np.ceil(radius_mm / VOXEL_MM))
    g = np.mgrid[-r : r + 1, -r : r + 1, -r : r + 1] * VOXEL_MM
    return (g**2).sum(0) <= radius_mm**2


def _smooth_noise(shape: tuple[int, ...], sigma_vox: float, seed: int) -> np.ndarray:
    """Fixed smooth random field, roughly unit variance."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), sigma_vox)
    return field / field.std()


def _load_templates() -> tuple[np.ndarray, ...]:
    from nilearn import datasets  # local import: nilearn is slow to import

    imgs = [
        datasets.load_mni152_brain_mask(resolution=2),
        datasets.load_mni152_gm_template(resolution=2),
        datasets.load_mni152_wm_template(resolution=2),
    ]
    affine = np.asarray(imgs[0].affine, dtype=float)
    arrays = [np.asarray(im.get_fdata(), dtype=np.float32) for im in imgs]
    return (affine, *arrays)


@lru_cache(maxsize=1)
def load_phantom() -> Phantom:
    """Build (once per process) the tumor-free head phantom."""
    affine, bm, gm, wm = _load_templates()
    pad = PAD_VOXELS
    bm, gm, wm = (np.pad(a, pad) for a in (bm, gm, wm))
    shift = np.eye(4)
    shift[:3, 3] = -pad
    affine = affine @ shift

    brain = bm > 0.5
    gm, wm = np.clip(gm, 0, 1) * brain, np.clip(wm, 0, 1) * brain
    scale = np.maximum(gm + wm, 1.0)
    gm, wm = gm / scale, wm / scale

    # Intracranial volume: closed, hole-filled, smoothed brain, grown by a 2 mm CSF rim.
    icv = ndimage.binary_closing(brain, _ball(8.0), iterations=1)
    icv = ndimage.binary_fill_holes(icv)
    icv = ndimage.gaussian_filter(icv.astype(np.float32), 1.5) > 0.5
    icv |= brain
    d_out = ndimage.distance_transform_edt(~icv, sampling=VOXEL_MM)
    d_in = ndimage.distance_transform_edt(icv, sampling=VOXEL_MM)
    # Signed distance to the ICV surface (mm, >0 outside), with smooth thickness variation.
    sd = (d_out - d_in).astype(np.float32)
    sd = sd - 2.0  # CSF rim: ICV extends 2 mm beyond the closed brain
    wobble = np.clip(1.0 + 0.15 * _smooth_noise(sd.shape, 6.0, seed=11), 0.7, 1.3)
    x = np.where(sd > 0, sd / wobble, sd)

    icv_soft = 1.0 - _smoothstep(x)
    layers = {  # (inner, outer) boundaries in mm outside the ICV surface
        "bone": [(0.0, 2.5), (5.5, 8.0)],
        "marrow": [(2.5, 5.5)],
        "skin": [(8.0, 10.0), (14.0, 16.0)],
        "fat": [(10.0, 14.0)],
    }
    tissues: dict[str, np.ndarray] = {
        "gm": gm.astype(np.float32),
        "wm": wm.astype(np.float32),
        "csf": np.clip(icv_soft - gm - wm, 0, 1).astype(np.float32),
    }
    for name, bands in layers.items():
        w = sum(_smoothstep(x - a, 0.4) - _smoothstep(x - b, 0.4) for a, b in bands)
        tissues[name] = np.asarray(w, dtype=np.float32)

    # Enhancing structures on t1ce: superior sagittal sinus + dura + choroid plexus.
    mm = np.stack(
        np.meshgrid(*[np.arange(n) for n in brain.shape], indexing="ij"), axis=-1
    ) @ affine[:3, :3].T + affine[:3, 3]
    sinus = (np.abs(mm[..., 0]) < 4.0) & (x > -5.0) & (x < 0.5) & (mm[..., 2] > -10.0)
    dura = (x > -1.0) & (x < 0.7)
    ventricles = (tissues["csf"] > 0.6) & (d_in > 20.0)
    choroid = ventricles & (_smooth_noise(brain.shape, 1.5, seed=12) > 0.8)
    vessels = np.clip(
        1.0 * sinus + 0.35 * dura + 0.9 * ndimage.gaussian_filter(choroid.astype(np.float32), 0.7),
        0,
        1,
    ).astype(np.float32)

    contrasts: dict[str, np.ndarray] = {}
    for m, mod in enumerate(MODALITIES):
        img = sum(tissues[t] * TISSUE_INTENSITY[t][m] for t in tissues)
        img = np.asarray(img, dtype=np.float32)
        if mod == "t1ce":
            img = img + VESSEL_ENHANCEMENT * vessels
        elif mod in ("t2", "flair"):
            img = img * (1.0 - 0.8 * (sinus & (x < 0)))  # flow void in the sinus
        contrasts[mod] = img.astype(np.float32)

    head = sum(tissues.values()) > 0.3
    return Phantom(
        affine=affine,
        tissues=tissues,
        brain_mask=brain,
        head_mask=np.asarray(head),
        vessels=vessels,
        parenchyma=(tissues["wm"] + 0.6 * tissues["gm"]).astype(np.float32),
        contrasts=contrasts,
        brain_distance_mm=ndimage.distance_transform_edt(brain, sampling=VOXEL_MM).astype(np.float32),
    )
