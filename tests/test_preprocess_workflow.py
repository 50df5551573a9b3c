"""The front half through the real workflow: conversion-free ingest, subjects without a tumor mask,
and a cohort with broken subjects run with --keep-going (the others finish; training does not start).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
from workflow_helpers import planned_jobs, run_snakemake, tiny_config, write_config

RESULTS = Path("results/demo")


def make_workdir(root: Path, tiny_cohort: Path, subjects: list[str], *, folds: int = 2) -> Path:
    shutil.copytree(tiny_cohort.parent, root / "data" / "demo")
    sheet = read_sheet(root)
    write_sheet(root, sheet[sheet["subject"].isin(subjects)])
    config = tiny_config()
    config["cv"]["folds"] = folds
    write_config(root, config)
    return root


def read_sheet(workdir: Path) -> pd.DataFrame:
    return pd.read_csv(workdir / "data/demo/samples.tsv", sep="\t", dtype=str, keep_default_na=False)


def write_sheet(workdir: Path, sheet: pd.DataFrame) -> None:
    sheet.to_csv(workdir / "data/demo/samples.tsv", sep="\t", index=False)


def to_nifti_folder(workdir: Path, subject: str) -> Path:
    """Convert a demo subject's DICOM once (as a site would) and point the sheet at the NIfTI folder."""
    from oncoflow.ingest import ingest_subject
    from workflow_helpers import base_config

    folder = workdir / "data/demo/nifti" / subject
    ingest_subject(subject, workdir / "data/demo/dicom" / subject, base_config()["ingest"]["modalities"], folder,
                   modalities=["t1", "t1ce", "t2", "flair"])
    sheet = read_sheet(workdir)
    sheet["nifti"] = ["" if s != subject else f"nifti/{subject}" for s in sheet["subject"]]
    sheet.loc[sheet["subject"] == subject, "dicom"] = ""
    write_sheet(workdir, sheet)
    return folder


def series_files(dicom_dir: Path, description: str) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(dicom_dir.rglob("IM*")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.SeriesDescription == description:
            found.append((int(ds.InstanceNumber), path))
    return sorted(found)


def test_nifti_subjects_go_through_import_nifti(tmp_path, tiny_cohort):
    workdir = make_workdir(tmp_path, tiny_cohort, ["demo001", "demo002", "demo004"])
    (workdir / "data/demo/nifti/demo002").mkdir(parents=True)
    sheet = read_sheet(workdir)
    sheet["nifti"] = ["nifti/demo002" if s == "demo002" else "" for s in sheet["subject"]]
    sheet.loc[sheet["subject"] == "demo002", "dicom"] = ""
    write_sheet(workdir, sheet)
    result = run_snakemake(workdir, "-n", "--cores", "1", "-p", str(RESULTS / "qc/qc.tsv"))
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert jobs["import_nifti"] == 1 and jobs["convert_dicom"] == 2, jobs
    assert jobs["plot_qc_montage"] == 3 and jobs["summarize_qc"] == 1 and jobs["transform_tumor_mask"] == 3


@pytest.mark.slow
def test_default_brain_extraction_runs_in_the_workflow_with_its_second_opinion(tmp_path, tiny_cohort):
    """The default config's brain extraction (HD-BET fast, deepbet's second opinion) through the real
    workflow on one demo head: brain.tsv, the QC row and the montage record both extractors."""
    from workflow_helpers import base_config

    workdir = make_workdir(tmp_path, tiny_cohort, ["demo001", "demo004"])  # two classes in the sheet
    config = tiny_config()
    config["preprocess"]["brain_extraction"] = base_config()["preprocess"]["brain_extraction"]
    assert config["preprocess"]["brain_extraction"]["backend"] == "hdbet"
    write_config(workdir, config)
    subject = RESULTS / "subjects/demo001"
    result = run_snakemake(workdir, "--cores", "2", str(RESULTS / "qc/demo001.png"))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    brain = pd.read_csv(workdir / subject / "brain/brain.tsv", sep="\t").iloc[0]
    qc = pd.read_csv(workdir / RESULTS / "qc/demo001.tsv", sep="\t").iloc[0]
    print(brain.to_dict())
    assert brain["backend"] == "hdbet" and brain["second_backend"] == "deepbet"
    assert qc["brain_backend"] == "hdbet" and qc["agreement_dice"] == brain["agreement_dice"]
    primary = np.asarray(nib.load(workdir / subject / "brain/brain_mask.nii.gz").dataobj) > 0.5
    second = np.asarray(nib.load(workdir / subject / "brain/second_opinion_mask.nii.gz").dataobj) > 0.5
    dice = 2 * (primary & second).sum() / (primary.sum() + second.sum())
    assert abs(dice - brain["agreement_dice"]) < 1e-3 and dice >= 0.9, (dice, brain.to_dict())
    assert not isinstance(brain["flag"], str), brain["flag"]  # a head: no flag
    log = (workdir / RESULTS / "logs/extract_brain/demo001.log").read_text()
    assert "Running fold 0 of 1" in log  # HD-BET's prints went to the log, not to the terminal
    assert "Running fold" not in result.stdout + result.stderr


def test_subject_without_tumor_mask_runs_the_front_half_only(tmp_path, tiny_cohort):
    workdir = make_workdir(tmp_path, tiny_cohort, ["demo001", "demo004"])
    sheet = read_sheet(workdir)
    sheet.loc[sheet["subject"] == "demo001", ["tumor_mask", "tumor_mask_space"]] = ["", ""]
    write_sheet(workdir, sheet)
    front = [str(RESULTS / "subjects/demo001/brain/brain_mask.nii.gz"), str(RESULTS / "qc/demo001.png"),
             str(RESULTS / "qc/qc.tsv")]
    result = run_snakemake(workdir, "-n", "--cores", "1", *front)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert jobs["transform_tumor_mask"] == 1 and jobs["plot_qc_montage"] == 2, jobs  # demo004's mask only

    # demo001's crop (which training needs): refused, naming the subject (the whole target list on
    # this 2-subject sheet stops earlier, at the folds check)
    result = run_snakemake(workdir, "-n", "--cores", "1", str(RESULTS / "subjects/demo001/crop/crop.npz"))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "subject 'demo001' has no tumor mask" in output and "front half" in output, output[-3000:]


@pytest.mark.slow
def test_broken_subjects_fail_alone_with_keep_going(tmp_path, tiny_cohort):
    """Eight subjects, six broken in different ways. With --keep-going the good subjects (one with
    a junk file in its DICOM folder, one from a NIfTI folder) get their crops and QC; each broken
    subject's log names the problem and the file; the folds are made but training never starts
    (every model needs every subject's crop), and Snakemake lists the failed subjects."""
    subjects = [f"demo00{i}" for i in range(1, 9)]
    workdir = make_workdir(tmp_path, tiny_cohort, subjects)
    sheet = read_sheet(workdir)
    sheet["label"] = ["1", "0"] * 4  # two folds of 2 + 2 (labels are irrelevant here)
    write_sheet(workdir, sheet)
    dicom = workdir / "data/demo/dicom"
    (dicom / "demo001" / "IM999999").write_text("not a DICOM file\n")  # junk: skipped, reported
    to_nifti_folder(workdir, "demo002")
    # demo003: a truncated DICOM file in the T1CE series
    _, cut = series_files(dicom / "demo003", "AX T1 POST GAD")[5]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    # demo004: a tumor mask on another series' grid (demo006's T1CE)
    sheet = read_sheet(workdir)
    sheet.loc[sheet["subject"] == "demo004", "tumor_mask"] = "masks/demo006_tumor.nii.gz"
    # demo005: the FLAIR series is missing
    for _, path in series_files(dicom / "demo005", "AX T2 FLAIR"):
        path.unlink()
    # demo006: a tumor mask (right grid) that lies outside the brain, in a corner of the field of view
    mask_path = workdir / "data/demo/masks/demo006_tumor.nii.gz"
    mask = nib.load(mask_path)
    corner = np.zeros(mask.shape, np.uint8)
    corner[:4, :4, mask.shape[2] // 2 - 1: mask.shape[2] // 2 + 2] = 1
    outside = workdir / "data/demo/masks/demo006_outside.nii.gz"
    nib.save(nib.Nifti1Image(corner, mask.affine, mask.header), outside)
    sheet.loc[sheet["subject"] == "demo006", "tumor_mask"] = "masks/demo006_outside.nii.gz"
    # demo007: a slice missing from the middle of the T2 series
    t2 = series_files(dicom / "demo007", "AX T2 FSE")
    t2[len(t2) // 2][1].unlink()
    # demo008: a DICOM file without pixel data (a non-image object) inside the T1CE series
    t1ce = series_files(dicom / "demo008", "AX T1 POST GAD")
    no_pixels = t1ce[len(t1ce) // 2][1]
    ds = pydicom.dcmread(no_pixels)
    del ds.PixelData
    ds.save_as(no_pixels)
    write_sheet(workdir, sheet)

    result = run_snakemake(workdir, "--cores", "2", "--keep-going", timeout=1500)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    results = workdir / RESULTS
    for subject in ("demo001", "demo002"):
        assert (results / f"subjects/{subject}/crop/crop.npz").is_file(), (subject, output[-4000:])
        assert (results / f"qc/{subject}.png").is_file() and (results / f"qc/{subject}.tsv").is_file()
    assert "NIfTI input" in (results / "subjects/demo002/raw/series.tsv").read_text()
    assert "IM999999" in (results / "logs/convert_dicom/demo001.log").read_text()

    def log(rule: str, subject: str) -> str:
        return (results / "logs" / rule / f"{subject}.log").read_text()

    assert "truncated" in log("convert_dicom", "demo003") and cut.name in log("convert_dicom", "demo003")
    assert "[demo004]" in log("transform_tumor_mask", "demo004")
    assert "demo006_tumor.nii.gz: tumor mask grid" in log("transform_tumor_mask", "demo004")
    assert "[demo005]" in log("convert_dicom", "demo005") and "'flair' is missing" in log("convert_dicom", "demo005")
    assert "InstanceNumber gap" in log("convert_dicom", "demo007")
    assert f"{Path(no_pixels).name}: no pixel data" in log("convert_dicom", "demo008")
    assert "[demo006]" in log("crop_tumor", "demo006") and "only 0% of the tumor lies inside the brain mask (the " \
        "sample sheet's tumor mask " in log("crop_tumor", "demo006")
    assert "demo006_outside.nii.gz on the reference grid)" in log("crop_tumor", "demo006")
    # QC of the subject whose crop failed shows why
    qc = pd.read_csv(results / "qc/demo006.tsv", sep="\t")
    assert "0% of the tumor lies inside the brain mask" in qc["flag"].iloc[0]
    # training needs every subject's crop: it never started, and the failed subjects are listed
    assert (results / "folds/splits.tsv").is_file()
    assert not (results / "models").exists() and not (results / "tables").exists()
    for subject in ("demo003", "demo004", "demo005", "demo006", "demo007", "demo008"):
        assert f"subject={subject}" in output, subject
    # the cohort QC table all the same (its rule could not run): failed subjects first, with their error;
    # demo006 failed after its QC (the crop) and keeps its own numbers and flag
    table = pd.read_csv(results / "qc/qc.tsv", sep="\t", keep_default_na=False)
    flags = dict(zip(table["subject"], table["flag"]))
    assert list(table["subject"][6:]) == ["demo001", "demo002"] and not flags["demo001"] and not flags["demo002"]
    assert flags["demo005"].startswith("failed in convert_dicom: [demo005]") and "'flair' is missing" in flags["demo005"]
    assert flags["demo004"].startswith("failed in transform_tumor_mask: [demo004]")
    assert re.match(r"failed in crop_tumor: \[demo006\] .*; only 0% of the tumor lies inside the brain mask",
                    flags["demo006"]) and table.set_index("subject").at["demo006", "brain_ml"] != ""
    assert not (results / "subjects/demo003/raw").exists() or not list((results / "subjects/demo003/raw").iterdir())
