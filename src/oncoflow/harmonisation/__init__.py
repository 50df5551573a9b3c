"""Site harmonisation of the feature-based models' inputs (config ``harmonisation``), fitted inside
each fold on the patients the model is fitted on and applied to every other patient of the fold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from oncoflow.harmonisation.combat import UNSEEN, ComBat, HarmonisationError, fit_combat

METHODS = ("none", "combat")

__all__ = ["METHODS", "UNSEEN", "ComBat", "HarmonisationError", "HarmonisationSettings", "harmonise", "site_series"]


@dataclass(frozen=True)
class HarmonisationSettings:
    """The validated config's ``harmonisation`` section (defaults: the schema's)."""
    method: str
    unseen_site: str
    min_site_patients: int

    @classmethod
    def from_config(cls, section: dict[str, Any] | None) -> HarmonisationSettings | None:
        """None when harmonisation is off (no section, or method none)."""
        if not section or section.get("method", "none") == "none":
            return None
        if section["method"] not in METHODS:
            raise HarmonisationError(f"harmonisation.method must be one of {', '.join(METHODS)}")
        return cls(section["method"], section["unseen_site"], int(section["min_site_patients"]))


def harmonise(features: pd.DataFrame, sites: pd.Series, fit_rows: list[str],
              settings: HarmonisationSettings | None) -> tuple[pd.DataFrame, ComBat | None]:
    """(``features`` harmonised, the fitted model): fitted on ``fit_rows`` only, applied to every
    row. ``features`` and ``sites`` are indexed by subject; no label is read. Off: unchanged."""
    if settings is None:
        return features, None
    missing = [s for s in features.index if s not in sites.index]
    if missing:
        raise HarmonisationError(f"harmonisation: subject {missing[0]!r} has no site in the splits table "
                                 "(set cohort.site to the sample-sheet column naming each subject's site)")
    model = fit_combat(features.loc[fit_rows], sites, min_site_patients=settings.min_site_patients,
                       unseen=settings.unseen_site)
    return model.apply(features, sites), model


def site_series(part: pd.DataFrame) -> pd.Series:
    """The ``site`` column of a fold's splits rows (indexed by subject); an error without one."""
    if "site" not in part.columns:
        raise HarmonisationError("harmonisation: folds/splits.tsv has no site column; set cohort.site to the "
                                 "sample-sheet column naming each subject's site, or harmonisation.method: none")
    return part["site"].astype(str)
