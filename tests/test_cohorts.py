"""Sample sheets written for public cohorts from their own layouts (real data; skips without it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from snakemake.utils import validate
from workflow_helpers import REPO

from oncoflow.cohorts import write_lgg_tcga_sheet
from oncoflow.sheet import load_samples


def test_lgg_tcga_sheet_loads_as_the_study_config_reads_it(shared_data: Path, tmp_path: Path) -> None:
    import yaml

    sheet_path = write_lgg_tcga_sheet(shared_data / "lgg_tcga", tmp_path / "lgg" / "samples.tsv")
    config = yaml.safe_load((REPO / "config/studies/lgg_radiogenomics.yaml").read_text())
    config["cohort"]["samples"] = str(sheet_path)
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    sheet = load_samples(config)
    assert len(sheet) == 110
    # data/README.md: COCCluster 1=56, 2=24, 3=30; one patient without gender
    assert sheet["y"].sum() == 24
    assert (sheet["coc_cluster"].value_counts().to_dict()) == {"1": 56, "3": 30, "2": 24}
    assert (sheet["gender"] == "").sum() == 1
    assert all(Path(p, "flair.nii.gz").is_file() for p in sheet["nifti"])
    raw = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    assert not raw["nifti"].str.startswith("/").any()  # relative: the sheet can move with the data
    # cohort.site names the tissue source site coded in the TCGA ID (issue #16's counts)
    assert config["cohort"]["site"] == "site"
    by_site = sheet.groupby("site")["y"].agg(["size", "sum"])
    assert {s: (int(r["size"]), int(r["sum"])) for s, r in by_site.iterrows()} == {
        "CS": (16, 5), "DU": (45, 9), "FG": (14, 4), "HT": (34, 6), "EZ": (1, 0)}
    assert (sheet["site"] == [s.split("_")[1] for s in sheet["subject"]]).all()


def test_lgg_tcga_sheet_names_the_patient_missing_a_file(shared_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "lgg"
    data.mkdir()
    (data / "data.csv").write_text((shared_data / "lgg_tcga" / "data.csv").read_text())
    first = pd.read_csv(data / "data.csv")["Patient"][0]
    (data / first).mkdir()
    with pytest.raises(FileNotFoundError, match=f"{first}: .*t1.nii.gz not found"):
        write_lgg_tcga_sheet(data, tmp_path / "samples.tsv")
