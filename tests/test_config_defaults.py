"""One home per default and allowed value: the JSON schema (workflow/schemas/config.schema.yaml)
and the package's dataclasses and tuples agree, so a default changed in one place and not the other
fails here."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from oncoflow.config import PRETRAIN_DEFAULTS
from oncoflow.train.selection import SELECT_ON, SELECTIONS
from oncoflow.fusion.late import METHODS
from oncoflow.harmonisation import METHODS as HARMONISATION_METHODS
from oncoflow.harmonisation import UNSEEN
from oncoflow.metrics.calibration import STRATEGIES
from oncoflow.metrics.compare import CORRECTIONS
from oncoflow.models.catalog import ARCHITECTURES, INITS, PRETRAIN_INITS, PRETRAIN_SOURCES, PRETRAIN_TASKS
from oncoflow.preprocess.brain import BACKENDS
from oncoflow.train.loop import IMBALANCE, TrainConfig
from oncoflow.train.pretrain import PretrainConfig

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
PROPS = SCHEMA["properties"]
MODEL = PROPS["models"]["items"]["properties"]
PRETRAIN = PROPS["pretrain"]["items"]["properties"]


def defaults(cls) -> dict:
    return {f.name: f.default for f in fields(cls)}


@pytest.mark.parametrize("key", ["init", "epochs", "batch_size", "lr", "weight_decay", "patience", "imbalance"])
def test_train_config_defaults_are_the_schema_defaults(key: str) -> None:
    assert defaults(TrainConfig)[key] == MODEL[key]["default"]


@pytest.mark.parametrize("key", ["select_on", "selection", "inner_folds", "nested_model"])
def test_train_selection_defaults_are_the_schema_defaults(key: str) -> None:
    assert defaults(TrainConfig)[key] == PROPS["train"]["properties"][key]["default"]


def test_keys_without_schema_default_keep_finished_jobs_params() -> None:
    # cotrain_segmentation and seg_weight stay out of the train_model params unless set (a default
    # written into every config would rerun finished jobs): their only default is TrainConfig's,
    # which from_params applies.
    for key in ("cotrain_segmentation", "seg_weight"):
        assert key in MODEL and "default" not in MODEL[key], key
    params = {"architecture": "resnet18", "modalities": ["t1"], "epochs": 1, "batch_size": 2, "lr": 0.1,
              "weight_decay": 0.0, "patience": 0, "imbalance": "none", "crop": {"slices": 1, "depth": 4},
              "seed": 0}
    cfg = TrainConfig.from_params(params)
    assert (cfg.seg_weight, cfg.cotrain_segmentation) == (defaults(TrainConfig)["seg_weight"], False)
    assert "0.5" in MODEL["seg_weight"]["description"] and defaults(TrainConfig)["seg_weight"] == 0.5


@pytest.mark.parametrize("key", ["init", "epochs", "batch_size", "lr", "weight_decay"])
def test_pretrain_defaults_agree(key: str) -> None:
    schema = PRETRAIN[key]["default"]
    assert defaults(PretrainConfig)[key] == schema
    if key in PRETRAIN_DEFAULTS:
        assert PRETRAIN_DEFAULTS[key] == schema


@pytest.mark.parametrize("enum, code", [
    (MODEL["architecture"]["enum"], ARCHITECTURES),
    (MODEL["init"]["enum"], INITS),
    (MODEL["imbalance"]["enum"], IMBALANCE),
    (PRETRAIN["task"]["enum"], PRETRAIN_TASKS),
    (PRETRAIN["source"]["enum"], PRETRAIN_SOURCES),
    (PRETRAIN["init"]["enum"], PRETRAIN_INITS),
    (PROPS["preprocess"]["properties"]["brain_extraction"]["properties"]["backend"]["enum"], BACKENDS),
    (PROPS["fusion"]["properties"]["methods"]["items"]["enum"], METHODS),
    (PROPS["evaluate"]["properties"]["correction"]["enum"], CORRECTIONS),
    (PROPS["evaluate"]["properties"]["calibration_strategy"]["enum"], STRATEGIES),
    (PROPS["harmonisation"]["properties"]["method"]["enum"], HARMONISATION_METHODS),
    (PROPS["harmonisation"]["properties"]["unseen_site"]["enum"], UNSEEN),
    (PROPS["train"]["properties"]["select_on"]["enum"], SELECT_ON),
    (PROPS["train"]["properties"]["selection"]["enum"], SELECTIONS),
], ids=["architecture", "init", "imbalance", "pretrain.task", "pretrain.source", "pretrain.init",
        "brain_extraction.backend", "fusion.methods", "evaluate.correction", "evaluate.calibration_strategy",
        "harmonisation.method", "harmonisation.unseen_site", "train.select_on", "train.selection"])
def test_schema_enums_are_the_code_tuples(enum: list, code: tuple) -> None:
    assert sorted(enum) == sorted(code)


def test_intended_use_default_lives_in_the_model_card_module() -> None:
    # no schema default (the config is a param of write_provenance, write_methods, ...: a default written
    # into every config would rerun them); the schema names the one home of the default
    from oncoflow.report.model_card import INTENDED_USE

    key = PROPS["study"]["properties"]["intended_use"]
    assert "default" not in key and "oncoflow.report.model_card.INTENDED_USE" in key["description"]
    assert INTENDED_USE.startswith("Research use only")
