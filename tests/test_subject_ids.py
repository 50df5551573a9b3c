"""Subject IDs name every file, folder, job and log (issue #29): an identifier as subject ID is refused
while the sheet is read, before any job or log exists (the test greps results/, logs/ and
.snakemake/ after a real Snakemake run); IDs equal but for case are refused naming both; predict's
--keep-going leaves bad rows out and lists them."""

from __future__ import annotations

import base64
import json
import os
import copy
import shutil
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from snakemake.utils import validate
from workflow_helpers import REPO, base_config, run_snakemake, write_config

from oncoflow.config import ConfigError
from oncoflow.sheet import load_predict_samples, load_samples
from oncoflow.subject_ids import first_file, identifier_shape

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
MRN = "MRN8675309"


@pytest.fixture()
def workdir(tmp_path: Path, tiny_cohort: Path) -> Path:
    shutil.copytree(tiny_cohort.parent, tmp_path / "data" / "demo")
    return tmp_path


def config() -> dict:
    c = copy.deepcopy(base_config())
    validate(c, str(SCHEMA), set_default=True)
    return c


def decoded(name: str) -> str:
    """.snakemake/metadata names files by the base64 of their path."""
    try:
        return base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode("utf-8", "replace")
    except ValueError:
        return ""


def rename(workdir: Path, old: str, new: str) -> Path:
    path = workdir / "data" / "demo" / "samples.tsv"
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    sheet.loc[sheet["subject"] == old, "subject"] = new
    sheet.to_csv(path, sep="\t", index=False)
    return path


@pytest.mark.parametrize("subject", ["demo001", "sub-01", "P001", "TCGA_CS_4941", "TCGA_CS_4941_19960909",
                                     "BraTS2021_00000", "UCSF-PDGM-0004", "pat12"])
def test_pseudonyms_of_public_cohorts_pass(subject: str) -> None:
    assert identifier_shape(subject) is None


@pytest.mark.parametrize("subject", [MRN, "mrn_0012345", "PID-123456", "1234567", "123-45-6789", "943_476_5919"])
def test_identifier_shapes_are_recognised(subject: str) -> None:
    assert identifier_shape(subject) is not None


def test_an_mrn_as_subject_id_leaves_no_trace(workdir: Path) -> None:
    """Before: refused by the ingest job, so the MRN named its log file, .snakemake's records and qc.tsv."""
    rename(workdir, "demo003", MRN)
    write_config(workdir, base_config())
    result = run_snakemake(workdir, "--cores", "1")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "line 4: the subject ID looks like a medical record number" in output, output[-3000:]
    assert MRN not in output and "8675309" not in output
    assert (workdir / ".snakemake").is_dir()  # Snakemake started (and logged): the grep below sees its files
    for folder in ("results", "logs", ".snakemake"):
        for path in (workdir / folder).rglob("*") if (workdir / folder).exists() else []:
            assert "8675309" not in str(path) and "8675309" not in decoded(path.name), path
            if path.is_file():
                assert b"8675309" not in path.read_bytes(), path
    assert not (workdir / "results").exists()
    # the documented override accepts it (an ID that is not identifying)
    allowed = config()
    allowed["ingest"]["allow_patient_id_as_subject"] = True
    assert MRN in load_samples(allowed, base=workdir).index


def test_an_id_equal_to_its_own_dicom_patient_name_is_refused(workdir: Path) -> None:
    folder = workdir / "data" / "demo" / "dicom" / "demo002"
    name = str(pydicom.dcmread(first_file(folder), stop_before_pixels=True).PatientName)  # e.g. DOE^JANE2
    rename(workdir, "demo002", name.replace("^", "_"))
    with pytest.raises(ConfigError, match=r"line 3: the subject ID looks like the DICOM PatientName of its own series"
                                          r" .*value is not repeated") as info:
        load_samples(config(), base=workdir)
    assert name.split("^")[-1] not in str(info.value)


def test_ids_equal_but_for_case_are_refused_naming_both(workdir: Path) -> None:
    rename(workdir, "demo002", "DEMO001")
    with pytest.raises(ConfigError, match=r"'demo001' and 'DEMO001' differ only by case"):
        load_samples(config(), base=workdir)


def test_predict_keep_going_leaves_bad_rows_out_and_lists_them(workdir: Path) -> None:
    sheet = rename(workdir, "demo003", MRN)
    rows = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
    rows.loc[rows["subject"] == "demo004", "dicom"] = "dicom/nowhere"
    rows.to_csv(sheet, sep="\t", index=False)
    c = config()
    c["predict"] = {"bundle": "unused", "samples": str(sheet), "name": "new"}
    with pytest.raises(ConfigError, match="line 4: the subject ID looks like"):
        load_predict_samples(c)
    refused: list[tuple[int, str]] = []
    kept = load_predict_samples(c, refused=refused)
    assert [line for line, _ in refused] == [4, 5]
    assert "subject 'demo004'" in refused[1][1] and "nowhere does not exist" in refused[1][1]
    assert MRN not in str(refused)
    assert len(kept) == len(rows) - 2 and {MRN, "demo004"}.isdisjoint(kept.index)


def test_predict_refuses_an_mrn_before_anything_is_unpacked_or_run(workdir: Path, capsys) -> None:
    from oncoflow.cli import main
    from oncoflow.predict.manifest import preparation
    from oncoflow.report.archive import write_archive

    sheet = rename(workdir, "demo003", MRN)
    c = config()
    bundle = workdir / "demo.tar.gz"  # the parts of a bundle that predict reads before unpacking it
    write_archive(bundle, {"bundle.json": json.dumps({"config": c, "preparation": preparation(c)}).encode()},
                  root="demo")
    user = workdir / "elsewhere"
    user.mkdir()
    cwd = Path.cwd()
    try:
        os.chdir(user)
        assert main(["predict", str(bundle), str(sheet)]) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert "line 4: the subject ID looks like a medical record number" in err and "8675309" not in err
    assert not list(user.iterdir())  # no results/, no logs, no .snakemake
