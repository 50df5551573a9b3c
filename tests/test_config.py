"""A bad config or sample sheet fails before any job runs, with a message naming the field."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pandas as pd
import pytest
from snakemake.utils import validate
from workflow_helpers import REPO, base_config, run_snakemake, write_config

from oncoflow.config import ConfigError, check_config, expand_models
from oncoflow.sheet import load_samples

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
        (lambda c: c["preprocess"]["brain_extraction"].update(hdbet_weights="models/hdbet"), "hdbet_weights"),
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


# --- image source (dicom or nifti), optional tumor mask, preprocessing switches --------------------------------


def edit_sheet(workdir: Path, edit) -> Path:
    sheet_path = workdir / "data" / "demo" / "samples.tsv"
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    edit(sheet).to_csv(sheet_path, sep="\t", index=False)
    return sheet_path


def test_sheet_may_give_a_nifti_folder_instead_of_dicom(workdir: Path) -> None:
    nifti = workdir / "data" / "demo" / "nifti" / "demo002"
    nifti.mkdir(parents=True)

    def edit(df):
        df["nifti"] = ""
        df.loc[df["subject"] == "demo002", ["dicom", "nifti"]] = ["", "nifti/demo002"]
        return df

    edit_sheet(workdir, edit)
    sheet = load_samples(valid_config(), base=workdir)
    assert sheet.loc["demo002", "source"] == "nifti" and sheet.loc["demo002", "nifti"] == str(nifti.resolve())
    assert sheet.loc["demo002", "dicom"] == ""
    assert sheet.loc["demo001", "source"] == "dicom" and sheet.loc["demo001", "nifti"] == ""


def test_sheet_with_only_a_nifti_column(workdir: Path) -> None:
    for s in ("demo001", "demo002"):
        (workdir / "data" / "demo" / "nifti" / s).mkdir(parents=True)
    edit_sheet(workdir, lambda df: df.assign(nifti=[f"nifti/{s}" for s in df["subject"]]).drop(columns="dicom")
               .head(2).assign(label=["0", "1"]))
    sheet = load_samples(valid_config(), base=workdir)
    assert list(sheet["source"]) == ["nifti", "nifti"] and list(sheet["dicom"]) == ["", ""]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda df: df.assign(nifti=["nifti/demo001"] + [""] * (len(df) - 1)),
         r"columns 'dicom' and 'nifti': subject 'demo001' has both"),
        (lambda df: df.assign(dicom=[""] + list(df["dicom"].iloc[1:])),
         r"columns 'dicom' and 'nifti': subject 'demo001' has neither"),
        (lambda df: df.drop(columns="dicom"), r"missing column 'dicom' or 'nifti'"),
        (lambda df: df.assign(nifti=["samples.tsv"] + [""] * (len(df) - 1), dicom=[""] + list(df["dicom"].iloc[1:])),
         r"column 'nifti': subject 'demo001': .*samples\.tsv is not a folder"),
        (lambda df: df.assign(tumor_mask_space=[""] + list(df["tumor_mask_space"].iloc[1:])),
         r"column 'tumor_mask_space': subject 'demo001' names ''"),
    ],
)
def test_image_source_errors_name_subject_and_column(workdir: Path, edit, message: str) -> None:
    (workdir / "data" / "demo" / "nifti" / "demo001").mkdir(parents=True)
    edit_sheet(workdir, edit)
    with pytest.raises(ConfigError, match=message):
        load_samples(valid_config(), base=workdir)


def test_tumor_mask_may_be_empty_but_is_needed_for_crops(workdir: Path) -> None:
    from oncoflow.sheet import subjects_without_tumor_mask, tumor_mask_needed

    edit_sheet(workdir, lambda df: df.assign(tumor_mask=[""] + list(df["tumor_mask"].iloc[1:]),
                                             tumor_mask_space=[""] + list(df["tumor_mask_space"].iloc[1:])))
    sheet = load_samples(valid_config(), base=workdir)
    assert subjects_without_tumor_mask(sheet) == ["demo001"]
    assert tumor_mask_needed(sheet, "demo002").endswith("demo002_tumor.nii.gz")
    with pytest.raises(ConfigError, match=r"'tumor_mask': subject 'demo001' has no tumor mask.*front half"):
        tumor_mask_needed(sheet, "demo001")


def test_schema_accepts_the_preprocessing_switches() -> None:
    config = base_config()
    config["preprocess"]["n4"]["activate"] = False
    config["preprocess"]["registration"]["transform"] = "none"
    config["preprocess"]["brain_extraction"]["backend"] = "none"
    validate(config, str(SCHEMA), set_default=True)
    check_config(config)
    config = base_config()
    del config["preprocess"]["n4"]["activate"]
    validate(config, str(SCHEMA), set_default=True)
    assert config["preprocess"]["n4"]["activate"] is True
    for key, value in (("registration", {"transform": "SyN"}), ("brain_extraction", {"backend": "bet2"}),
                       ("n4", {"activate": "no"})):
        config = base_config()
        config["preprocess"][key].update(value)
        with pytest.raises(Exception, match=list(value.values())[0]):
            validate(config, str(SCHEMA))


def test_tag_tells_apart_two_variants_of_one_model() -> None:
    config = valid_config()
    scratch = {"architecture": "resnet18", "inputs": ["flair", "flair+t1ce"]}
    config["models"] = [scratch, {**scratch, "init": "checkpoint", "weights": "w.pt"}]
    with pytest.raises(ConfigError, match=r"models\[1\]\.inputs\[0\]: model 'flair_resnet18' "
                       r"defined twice \(give one of the entries a distinct models\[\]\.tag\)"):
        expand_models(config)
    config["models"][1]["tag"] = "ckpt"
    validate(config, str(SCHEMA), set_default=True)
    assert list(expand_models(config)) == ["flair_resnet18", "flair+t1ce_resnet18",
                                           "flair_resnet18_ckpt", "flair+t1ce_resnet18_ckpt"]
    assert "tag" not in expand_models(valid_config())["flair_resnet18"].params
