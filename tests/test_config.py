"""A bad config or sample sheet fails before any job runs, with a message naming the field."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pandas as pd
import pytest
from snakemake.utils import validate
from workflow_helpers import REPO, base_config, run_snakemake, write_config

from oncoflow.config import ConfigError, check_config, expand_models, load_samples

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture()
def workdir(tmp_path: Path, tiny_cohort: Path) -> Path:
    shutil.copytree(tiny_cohort.parent, tmp_path / "data" / "demo")
    return tmp_path


def valid_config() -> dict:
    config = base_config()
    validate(config, str(SCHEMA), set_default=True)
    return config


def test_shipped_config_is_valid(workdir: Path) -> None:
    config = valid_config()
    check_config(config)
    sheet = load_samples(config, base=workdir)
    assert len(sheet) == 14
    assert set(expand_models(config)) == {f"{m}_resnet18" for m in ("t1", "t1ce", "t2", "flair")}


def test_schema_fills_defaults_and_rejects_unknown_keys() -> None:
    config = base_config()
    del config["cv"]
    validate(config, str(SCHEMA), set_default=True)
    assert config["cv"]["folds"] == 5
    config["crop"]["sizes"] = 3
    with pytest.raises(Exception, match="sizes"):
        validate(config, str(SCHEMA))


def test_unknown_modality_names_the_field() -> None:
    config = valid_config()
    config["models"][0]["inputs"] = ["t1", "dwi+t1"]
    with pytest.raises(ConfigError, match=r"models\[0\]\.inputs\[1\]: unknown modality 'dwi'"):
        check_config(config)
    config = valid_config()
    config["preprocess"]["reference"] = "pd"
    with pytest.raises(ConfigError, match=r"preprocess\.reference: unknown modality 'pd'"):
        check_config(config)


def test_early_fusion_stack_is_a_model_of_its_own() -> None:
    config = valid_config()
    config["models"][0]["inputs"] = ["flair", "flair+t1ce"]
    specs = expand_models(config)
    assert specs["flair+t1ce_resnet18"].modalities == ("flair", "t1ce")


def test_pretrained_init_needs_weights() -> None:
    config = valid_config()
    config["models"][0]["init"] = "imagenet"
    with pytest.raises(ConfigError, match=r"models\[0\]\.weights"):
        check_config(config)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda df: df.drop(columns="tumor_mask_space"), "missing column 'tumor_mask_space'"),
        (lambda df: df.drop(columns="label"), "missing column 'label'"),
        (lambda df: pd.concat([df, df.iloc[[0]]]), "duplicate subject 'demo001'"),
        (lambda df: df.assign(label=["2"] + list(df["label"].iloc[1:])), "expected two classes"),
        (lambda df: df.assign(tumor_mask_space="dwi"), "tumor_mask_space.*'dwi'"),
        (lambda df: df.assign(dicom=["dicom/nowhere"] + list(df["dicom"].iloc[1:])), "does not exist"),
    ],
)
def test_bad_sample_sheet_names_the_column(workdir: Path, edit, message: str) -> None:
    sheet_path = workdir / "data" / "demo" / "samples.tsv"
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str)
    edit(sheet).to_csv(sheet_path, sep="\t", index=False)
    with pytest.raises(ConfigError, match=message):
        load_samples(valid_config(), base=workdir)


def test_missing_sheet_says_how_to_make_the_demo(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="oncoflow demo"):
        load_samples(valid_config(), base=tmp_path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["models"][0].update(inputs=["t1", "dwi"]), "unknown modality 'dwi'"),
        (lambda c: c["cv"].update(folds="five"), "folds"),
        (lambda c: c["preprocess"]["brain_extraction"].update(backend="hdbet"), "hdbet_weights"),
    ],
)
def test_snakemake_refuses_bad_config_before_any_job(workdir: Path, mutate, message: str) -> None:
    config = copy.deepcopy(base_config())
    mutate(config)
    write_config(workdir, config)
    result = run_snakemake(workdir, "--cores", "1")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (workdir / "results").exists()
