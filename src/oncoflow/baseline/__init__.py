"""The ``baseline`` model every study gets: tumor volume and tumor intensity relative to the
brain (organ) outside it, in a penalised logistic regression fitted per fold (features, model)."""
from __future__ import annotations

from typing import Any

import pandas as pd

NAME = "baseline"


def baseline_models(config: dict[str, Any], samples: pd.DataFrame) -> list[str]:
    """``["baseline"]`` when config ``baseline.activate`` is on and every subject of the sheet has a
    tumor mask (the features need one; in a study with segment.feature_mask other than manual every
    subject has its cross-fitted predicted one), else ``[]``."""
    if not config.get("baseline", {}).get("activate", True):
        return []
    if predicted_feature_masks(config):
        return [NAME]
    if "tumor_mask" not in samples.columns or (samples["tumor_mask"].astype(str).str.strip() == "").any():
        return []
    return [NAME]


def predicted_feature_masks(config: dict[str, Any]) -> bool:
    """A study (not a predict run) whose features may read predicted masks (segment.feature_mask),
    so that a subject without a manual mask still gets features."""
    return not config.get("predict") and (config.get("segment") or {}).get("feature_mask", "manual") != "manual"
