"""Semantic checks of a schema-valid config and its sample sheet, and the derived model list.

The JSON schema (workflow/schemas/) checks types and allowed values; this module checks what a
schema cannot: cross-references between sections and the sample sheet's content. Every error names
the config field or the sheet column and subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

SHEET_COLUMNS = ("subject", "cohort", "dicom", "tumor_mask", "tumor_mask_space")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    architecture: str
    modalities: tuple[str, ...]
    params: dict[str, Any]  # every hyper-parameter, as the train rule's params (rerun trigger)


def model_name(inputs: str, architecture: str) -> str:
    return f"{inputs}_{architecture}"


def expand_models(config: dict[str, Any]) -> dict[str, ModelSpec]:
    """One ModelSpec per (models[i], inputs[j]); names like ``flair+t1ce_resnet18``."""
    known = list(config["ingest"]["modalities"])
    specs: dict[str, ModelSpec] = {}
    for i, entry in enumerate(config["models"]):
        if entry.get("init", "scratch") != "scratch" and not entry.get("weights"):
            raise ConfigError(f"config: models[{i}].weights: init {entry['init']!r} needs a local "
                              "weights file")
        for j, inputs in enumerate(entry["inputs"]):
            modalities = tuple(inputs.split("+"))
            unknown = [m for m in modalities if m not in known]
            if unknown:
                raise ConfigError(f"config: models[{i}].inputs[{j}]: unknown modality "
                                  f"{unknown[0]!r} (ingest.modalities defines {', '.join(known)})")
            name = model_name(inputs, entry["architecture"])
            if name in specs:
                raise ConfigError(f"config: models[{i}].inputs[{j}]: model {name!r} defined twice")
            params = {k: v for k, v in entry.items() if k != "inputs"}
            specs[name] = ModelSpec(name, entry["architecture"], modalities, params)
    return specs


def fusion_inputs(config: dict[str, Any], specs: dict[str, ModelSpec]) -> list[str]:
    chosen = config.get("fusion", {}).get("models") or [
        n for n, s in specs.items() if len(s.modalities) == 1
    ]
    for name in chosen:
        if name not in specs:
            raise ConfigError(f"config: fusion.models: {name!r} is not a model "
                              f"(models are {', '.join(specs)})")
    return chosen


def check_config(config: dict[str, Any]) -> None:
    modalities = list(config["ingest"]["modalities"])
    ref = config["preprocess"]["reference"]
    if ref not in modalities:
        raise ConfigError(f"config: preprocess.reference: unknown modality {ref!r} "
                          f"(ingest.modalities defines {', '.join(modalities)})")
    specs = expand_models(config)
    if config.get("fusion", {}).get("methods"):
        if len(fusion_inputs(config, specs)) < 2:
            raise ConfigError("config: fusion.methods is set but fewer than two models to fuse")
    backend = config["preprocess"].get("brain_extraction", {})
    if backend.get("backend") == "hdbet":
        from oncoflow.preprocess.brain import check_hdbet_weights

        try:
            check_hdbet_weights(backend.get("hdbet_weights"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config: preprocess.brain_extraction.hdbet_weights: {exc}") from exc


def load_samples(config: dict[str, Any], base: Path = Path(".")) -> pd.DataFrame:
    """Read and check the sample sheet; adds ``y`` (1 = positive class) and absolute paths."""
    path = base / config["cohort"]["samples"]
    if not path.exists():
        raise ConfigError(f"config: cohort.samples: sample sheet {path} not found (for the demo, "
                          "run `oncoflow demo` first, or use `make demo`)")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    label = config["study"]["label"]
    for column in (*SHEET_COLUMNS, label):
        if column not in sheet.columns:
            field = "study.label" if column == label else "sample sheet"
            raise ConfigError(f"{path}: missing column {column!r} ({field}); columns are "
                              f"{', '.join(sheet.columns)}")
    dup = sheet["subject"][sheet["subject"].duplicated()].tolist()
    if dup:
        raise ConfigError(f"{path}: column 'subject': duplicate subject {dup[0]!r}")
    empty = sheet["subject"][sheet[label].str.strip() == ""].tolist()
    if empty:
        raise ConfigError(f"{path}: column {label!r}: no label for subject {empty[0]!r}")
    positive = str(config["study"]["positive"])
    values = sorted(sheet[label].unique())
    if positive not in values or len(values) != 2:
        raise ConfigError(f"{path}: column {label!r}: expected two classes including study.positive "
                          f"= {positive!r}, found {values}")
    modalities = list(config["ingest"]["modalities"])
    bad_space = sheet[~sheet["tumor_mask_space"].isin(modalities)]
    if len(bad_space):
        row = bad_space.iloc[0]
        raise ConfigError(f"{path}: column 'tumor_mask_space': subject {row['subject']!r} names "
                          f"{row['tumor_mask_space']!r}, not one of {', '.join(modalities)}")
    sheet["y"] = (sheet[label] == positive).astype(int)
    root = path.parent
    for column in ("dicom", "tumor_mask"):
        sheet[column] = [str((root / p).resolve()) for p in sheet[column]]
        missing = sheet[[not Path(p).exists() for p in sheet[column]]]
        if len(missing):
            row = missing.iloc[0]
            raise ConfigError(f"{path}: column {column!r}: subject {row['subject']!r}: "
                              f"{row[column]} does not exist")
    return sheet.set_index("subject", drop=False)
