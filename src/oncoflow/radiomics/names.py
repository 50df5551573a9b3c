"""Names of the radiomics branch's models: ``radiomics_<variant>``, ``clinical`` and
``combined_<variant>`` (oncoflow.radiomics.models fits them). No scikit-learn here: the config
checks and the study plan name these models while Snakemake parses the rules."""

from __future__ import annotations


class RadiomicsModelError(ValueError):
    pass


def radiomics_model_names(variants: list[str], clinical: list[str]) -> list[str]:
    names = [f"radiomics_{v}" for v in variants]
    if clinical:
        names += ["clinical", *[f"combined_{v}" for v in variants]]
    return names


def parse_model(name: str) -> tuple[str, str | None]:
    """(kind, variant): ``radiomics_sr`` -> (radiomics, sr); ``clinical`` -> (clinical, None)."""
    if name == "clinical":
        return "clinical", None
    kind, _, variant = name.partition("_")
    if kind not in ("radiomics", "combined") or not variant:
        raise RadiomicsModelError(f"unknown radiomics model {name!r}")
    return kind, variant
