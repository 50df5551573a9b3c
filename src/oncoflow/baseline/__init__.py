"""The ``baseline`` model every study gets: tumor volume and tumor intensity relative to the
brain (organ) outside it, in a penalised logistic regression fitted per fold (features, model)."""
from __future__ import annotations

from typing import Any

import pandas as pd

NAME = "baseline"


def baseline_models(config: dict[str, Any], samples: pd.DataFrame) -> list[str]:
    """``["baseline"]`` when config ``baseline.activate`` is on and every subject of the sheet has a
    tumor mask (the features need one), else ``[]``."""
    if not config.get("baseline", {}).get("activate", True):
        return []
    if "tumor_mask" not in samples.columns or (samples["tumor_mask"].astype(str).str.strip() == "").any():
        return []
    return [NAME]
