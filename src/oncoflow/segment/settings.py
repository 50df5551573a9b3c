"""The ``segment`` config section, validated (the JSON schema holds the defaults; this dataclass's
defaults are the same values, checked by tests/test_segment.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from oncoflow.config import ConfigError

#: segment.crop_mask values: which tumor mask a crop uses; the first is the default.
CROP_MASKS = ("manual", "predicted", "predicted_where_missing")
#: segment.feature_mask values: which tumor mask the baseline's and the IBSI radiomics' features read
FEATURE_MASKS = CROP_MASKS
#: segment keys that judge whether a predicted mask may be cropped (study crops and ``oncoflow predict``;
#: not training settings)
PLAUSIBILITY = ("min_predicted_ml", "max_predicted_ml", "min_inside_brain")
#: segment.architecture values (MONAI networks, 2D on axial slices).
ARCHITECTURES = ("unet", "segresnet")


@dataclass(frozen=True)
class SegmentSettings:
    activate: bool = False
    crop_mask: str = CROP_MASKS[0]
    feature_mask: str = FEATURE_MASKS[0]
    architecture: str = ARCHITECTURES[0]
    inputs: list[str] = field(default_factory=list)  # empty: every modality
    size: int = 64
    margin_mm: float = 5.0
    epochs: int = 20
    batch_size: int = 8
    lr: float = 0.005
    threshold: float = 0.5
    # whether a predicted mask may be cropped (study crops, oncoflow predict; not a training setting)
    min_predicted_ml: float = 0.1
    max_predicted_ml: float = 500.0
    min_inside_brain: float = 0.5

    @property
    def active(self) -> bool:
        """Segmenters are trained when asked for, or when a crop or the features read a predicted mask."""
        return self.activate or self.crop_mask != "manual" or self.feature_mask != "manual"

    def params(self, modalities: list[str], seed: int) -> dict[str, Any]:
        """The tumor_segmenter / predicted_tumor_mask params (a rerun trigger: only what shapes them)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("activate", "crop_mask", "feature_mask", *PLAUSIBILITY)}
        return {**out, "inputs": list(self.inputs or modalities), "seed": seed}

    def plausibility(self) -> dict[str, float]:
        """The bounds a predicted mask must meet to be cropped (oncoflow.segment.plausibility)."""
        return {k: float(getattr(self, k)) for k in PLAUSIBILITY}


def segment_settings(config: dict[str, Any]) -> SegmentSettings:
    """``config`` validated by the schema (defaults filled). Errors name the key."""
    raw = dict(config.get("segment") or {})
    settings = SegmentSettings(**raw)
    modalities = list(config["ingest"]["modalities"])
    unknown = [m for m in settings.inputs if m not in modalities]
    if unknown:
        raise ConfigError(f"config: segment.inputs: unknown modality {unknown[0]!r} (ingest.modalities "
                          f"defines {', '.join(modalities)})")
    if settings.crop_mask != "manual" and config["preprocess"]["atlas"]["activate"]:
        raise ConfigError(f"config: segment.crop_mask {settings.crop_mask!r} with preprocess.atlas.activate: "
                          "predicted masks lie on the reference grid, atlas crops read masks on the "
                          "template grid; use crop_mask manual or switch the atlas off")
    return settings
