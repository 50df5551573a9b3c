"""Study-shaped demo cohorts (oncoflow.demo.studies, `oncoflow demo --study`): modalities, label
column and class balance, external cohort, and the abdominal phantom of the liver study."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from oncoflow.cli import main
from oncoflow.demo import STUDY_SHAPES, make_demo_cohort
from oncoflow.demo import simulate_subject
from oncoflow.demo.studies import draw_labels


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


def series_descriptions(folder: Path) -> set[str]:
    return {pydicom.dcmread(p, stop_before_pixels=True).SeriesDescription for p in folder.rglob("IM*")}


@pytest.mark.parametrize("name", sorted(STUDY_SHAPES))
def test_labels_keep_the_class_balance_in_each_cohort(name: str) -> None:
    shape = STUDY_SHAPES[name]
    n = 200
    n_ext = int(round(shape.external_fraction * n))
    labels = draw_labels(np.random.default_rng(0), n, n_ext, shape.positive_fraction)
    assert set(labels) == {0, 1}
    assert abs(labels[: n - n_ext].mean() - shape.positive_fraction) < 0.01
    if n_ext:
        assert abs(labels[n - n_ext:].mean() - shape.positive_fraction) < 0.02


def test_small_cohorts_keep_both_classes() -> None:
    labels = draw_labels(np.random.default_rng(0), 11, 0, 0.18)
    assert labels.sum() == 2 and len(labels) == 11
    labels = draw_labels(np.random.default_rng(0), 7, 2, 0.6)
    assert set(labels[:5]) == set(labels[5:]) == {0, 1}


def test_brain_study_shape_has_its_modalities_label_column_and_external_cohort(tmp_path: Path) -> None:
    shape = STUDY_SHAPES["h3k27m_wholebrain_cotrain"]
    sheet = make_demo_cohort(tmp_path, 7, seed=2, voxel_scale=3.0, external_fraction=0.3, shape=shape)
    rows = pd.read_csv(sheet, sep="\t", dtype=str)
    assert list(rows.columns) == ["subject", "h3k27m", "cohort", "dicom", "tumor_mask", "tumor_mask_space", "age", "sex",
                                 "site"]
    assert rows["cohort"].tolist() == ["train"] * 5 + ["external"] * 2
    assert set(rows.loc[rows["cohort"] == "external", "h3k27m"]) == {"0", "1"}
    assert series_descriptions(tmp_path / "dicom" / "demo001") == {"AX T1 POST GAD", "AX T2 FSE"}
    assert "Study shape `h3k27m_wholebrain_cotrain`" in (tmp_path / "README.md").read_text()


def test_lesion_lies_in_the_liver_and_covariates_follow_the_label() -> None:
    sims = [simulate_subject(i, i % 2, seed=4, voxel_scale=2.0, body="abdomen") for i in range(24)]
    for sim in sims:
        mask = sim.series[0].mask.astype(bool)
        assert mask.sum() > 3, sim.subject
        assert not (mask & ~sim.organ_mask.astype(bool)).any(), sim.subject
        image = sim.series[0].pixels.astype(float)
        lesion, liver = image[mask].mean(), image[sim.organ_mask.astype(bool) & ~mask].mean()
        assert lesion / liver == pytest.approx(sim.covariates["arterial_enhancement"], rel=0.35), sim.subject
    labels = np.array([s.label for s in sims])
    diameter = np.array([s.covariates["tumor_diameter"] for s in sims])
    enhancement = np.array([s.covariates["arterial_enhancement"] for s in sims])
    assert auc(-diameter, labels) > 0.7 and auc(enhancement, labels) > 0.7  # label 1: small, bright


def test_abdomen_shape_writes_the_arterial_series_mask_and_clinical_columns(tmp_path: Path) -> None:
    assert main(["demo", "--study", "hcc_tace_radiomics_sr", "--out", str(tmp_path), "--subjects", "2",
                 "--voxel-scale", "3"]) == 0
    rows = pd.read_csv(tmp_path / "samples.tsv", sep="\t")
    assert list(rows.columns)[-2:] == ["tumor_diameter", "arterial_enhancement"]
    assert set(rows["tumor_mask_space"]) == {"arterial"} and "response" in rows.columns
    files = sorted((tmp_path / "dicom" / "demo001").rglob("IM*"))
    assert series_descriptions(tmp_path / "dicom" / "demo001") == {"AX LAVA ARTERIAL"}
    mask = nib.load(tmp_path / "masks" / "demo001_tumor.nii.gz")
    first = pydicom.dcmread(files[0])
    assert mask.shape == (first.Columns, first.Rows, len(files)) and mask.get_fdata().sum() > 0
    readme = (tmp_path / "README.md").read_text()
    assert "abdominal phantom" in readme and "MNI152" not in readme


def test_unknown_study_shape_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--study", "nope", "--out", "/nonexistent"]) == 2
    assert "no such study shape" in capsys.readouterr().err
