"""`oncoflow cohort-sheet bids` (oncoflow.cohorts.bids): a BIDS dataset written from demo images
(T1w, ce-gadolinium T1w, T2w, FLAIR, JSON sidecars, participants.tsv, tumor masks in derivatives/)
becomes a sample sheet that oncoflow's own sheet loader and NIfTI ingest accept; a missing or
ambiguous modality stops with the subject named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from workflow_helpers import tiny_config

from oncoflow.cli import main as oncoflow
from oncoflow.sheet import load_samples
from oncoflow.demo.cohort import simulate_subject
from oncoflow.demo.dicom_writer import dcm2niix_orientation
from oncoflow.ingest.subject import ingest_nifti_folder

# demo modality -> BIDS file-name entities (before the suffix) and suffix
BIDS_NAMES = {"t1": ("", "T1w"), "t1ce": ("_ce-gadolinium", "T1w"), "t2": ("", "T2w"), "flair": ("", "FLAIR")}


def _save(volume: np.ndarray, affine: np.ndarray, path: Path, dtype: type = np.int16) -> None:
    data, affine = dcm2niix_orientation(volume, affine)
    img = nib.Nifti1Image(data.astype(dtype), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)


def write_bids(root: Path, n: int = 3, sessions: tuple[str, ...] = ()) -> Path:
    """A BIDS dataset of ``n`` demo subjects (voxels 6x the demo's), with sidecars, participants.tsv
    (label column ``idh``) and tumor masks (on the ce-T1w grid) in derivatives/tumor/."""
    (root / "dataset_description.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "demo glioma", "BIDSVersion": "1.9.0"}))
    derivatives = root / "derivatives" / "tumor"
    derivatives.mkdir(parents=True)
    (derivatives / "dataset_description.json").write_text(json.dumps(
        {"Name": "tumor masks", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
         "GeneratedBy": [{"Name": "manual"}]}))
    rows = []
    for idx in range(n):
        label = idx % 2
        sim = simulate_subject(idx, label, seed=11, voxel_scale=6.0)
        sub = f"{idx + 1:02d}"
        rows.append(f"sub-{sub}\t{'mutant' if label else 'wildtype'}\t{sim.age if idx else 'n/a'}\t{sim.sex}")
        for ses in sessions or ("",):
            prefix = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
            anat = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "anat"
            for series in sim.series:
                entities, suffix = BIDS_NAMES[series.protocol.modality]
                _save(series.pixels, series.geometry.affine, anat / f"{prefix}{entities}_{suffix}.nii.gz")
                (anat / f"{prefix}{entities}_{suffix}.json").write_text(json.dumps(
                    {"SeriesDescription": series.protocol.description, "MagneticFieldStrength": 3}))
            mask = sim.by_modality("t1ce")
            _save(mask.mask, mask.geometry.affine,
                  derivatives / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "anat" / f"{prefix}_desc-tumor_mask.nii.gz",
                  np.uint8)
    (root / "participants.tsv").write_text("participant_id\tidh\tage\tsex\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bids(tmp_path_factory.mktemp("bids") / "ds")


def test_bids_dataset_becomes_a_sheet_that_oncoflow_ingests(bids_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sheet" / "samples.tsv"
    config_file = tmp_path / "study.yaml"
    config = tiny_config()
    config["study"]["label"] = "idh_status"
    import yaml

    config_file.write_text(yaml.safe_dump(config))
    assert oncoflow(["cohort-sheet", "bids", "--data", str(bids_root), "--out", str(out), "--config",
                     str(config_file), "--label", "idh", "--mask-desc", "tumor", "--mask-space", "t1ce"]) == 0
    sheet = pd.read_csv(out, sep="\t", dtype=str, keep_default_na=False)
    assert sheet["subject"].tolist() == ["01", "02", "03"]
    assert sheet["idh_status"].tolist() == ["wildtype", "mutant", "wildtype"] and "idh" not in sheet
    assert {"age", "sex"} <= set(sheet.columns) and (sheet["cohort"] == "train").all()
    assert sheet.loc[0, "age"] == "" and sheet.loc[1, "age"].isdigit()  # BIDS n/a -> a blank cell
    assert (sheet["tumor_mask_space"] == "t1ce").all()
    row = sheet.iloc[1]
    folder = out.parent / row["nifti"]
    anat = bids_root / "sub-02" / "anat"
    for modality, (entities, suffix) in BIDS_NAMES.items():
        linked = folder / f"{modality}.nii.gz"
        assert linked.resolve() == (anat / f"sub-02{entities}_{suffix}.nii.gz").resolve(), modality
        assert (folder / f"{modality}.json").resolve() == (anat / f"sub-02{entities}_{suffix}.json").resolve()
    assert (out.parent / row["tumor_mask"]).resolve().name == "sub-02_desc-tumor_mask.nii.gz"

    # the sheet is one that the workflow reads, and the linked folder one that its NIfTI ingest takes
    config["cohort"]["samples"] = str(out)
    config["study"]["positive"] = "mutant"
    loaded = load_samples(config)
    assert loaded["y"].tolist() == [0, 1, 0] and (loaded["source"] == "nifti").all()
    written = ingest_nifti_folder("02", folder, tmp_path / "raw", modalities=["t1", "t1ce", "t2", "flair"])
    t1ce = nib.load(written["t1ce"])
    source = nib.load(anat / "sub-02_ce-gadolinium_T1w.nii.gz")
    assert np.array_equal(np.asanyarray(t1ce.dataobj), np.asanyarray(source.dataobj))
    assert np.allclose(t1ce.affine, source.affine)
    assert not np.array_equal(np.asanyarray(nib.load(written["t1"]).dataobj), np.asanyarray(source.dataobj))


def test_missing_or_ambiguous_modality_names_the_subject(bids_root: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "ds"
    shutil.copytree(bids_root, root)
    out = tmp_path / "samples.tsv"
    args = ["cohort-sheet", "bids", "--data", str(root), "--out", str(out)]
    (root / "sub-02/anat/sub-02_FLAIR.nii.gz").unlink()
    assert oncoflow(args) == 2
    err = capsys.readouterr().err
    assert "subject sub-02: no flair image (suffix=FLAIR)" in err and not out.exists()

    assert oncoflow([*args, "--modalities", "t1,t1ce,t2"]) == 0  # a study without FLAIR
    anat = root / "sub-01/anat"
    for acq in ("axial", "sagittal"):
        shutil.copy(anat / "sub-01_T2w.nii.gz", anat / f"sub-01_acq-{acq}_T2w.nii.gz")
    (anat / "sub-01_T2w.nii.gz").unlink()
    assert oncoflow([*args, "--modalities", "t1,t1ce,t2"]) == 2
    err = capsys.readouterr().err
    assert "subject sub-01: 2 images match t2 (suffix=T2w)" in err
    assert "sub-01_acq-axial_T2w.nii.gz, sub-01_acq-sagittal_T2w.nii.gz" in err
    # the mapping picks the acquisition; sub-02, -03 have only the plain T2w: the mapping must allow it
    assert oncoflow([*args, "--modalities", "t1,t1ce,t2", "--map", "t2=suffix:T2w,acq:axial"]) == 2
    assert "subject sub-02: no t2 image (suffix=T2w, acq=axial)" in capsys.readouterr().err
    for sub in ("02", "03"):
        (root / f"sub-{sub}/anat/sub-{sub}_T2w.nii.gz").rename(root / f"sub-{sub}/anat/sub-{sub}_acq-axial_T2w.nii.gz")
    assert oncoflow([*args, "--modalities", "t1,t1ce,t2", "--map", "t2=suffix:T2w,acq:axial"]) == 0
    t2 = (out.parent / pd.read_csv(out, sep="\t", dtype=str).loc[0, "nifti"] / "t2.nii.gz").resolve()
    assert t2.name == "sub-01_acq-axial_T2w.nii.gz"

    # T1w without a contrast agent: a ce-T1w file is never taken for t1; another ce label is t1ce only when mapped
    (anat / "sub-01_T1w.nii.gz").unlink()
    assert oncoflow([*args, "--modalities", "t1"]) == 2
    assert "subject sub-01: no t1 image (suffix=T1w, ce=(absent))" in capsys.readouterr().err
    (anat / "sub-01_ce-gadolinium_T1w.nii.gz").rename(anat / "sub-01_ce-Gd_T1w.nii.gz")
    assert oncoflow([*args, "--modalities", "t1ce"]) == 2
    assert "subject sub-01: no t1ce image (suffix=T1w, ce=gadolinium)" in capsys.readouterr().err
    assert oncoflow([*args, "--modalities", "t1ce", "--map", "t1ce=suffix:T1w,ce:*"]) == 0
    t1ce = (out.parent / pd.read_csv(out, sep="\t", dtype=str).loc[0, "nifti"] / "t1ce.nii.gz").resolve()
    assert t1ce.name == "sub-01_ce-Gd_T1w.nii.gz"


def test_sessions_one_chosen_or_each_with_its_subject(tmp_path: Path, capsys) -> None:
    root = write_bids(tmp_path / "ds", n=2, sessions=("pre", "post"))
    out = tmp_path / "samples.tsv"
    args = ["cohort-sheet", "bids", "--data", str(root), "--out", str(out), "--modalities", "t1ce,flair"]
    assert oncoflow(args) == 2
    assert "subject sub-01: 2 sessions (ses-post, ses-pre); choose one with --session" in capsys.readouterr().err
    assert oncoflow([*args, "--session", "pre"]) == 0
    sheet = pd.read_csv(out, sep="\t", dtype=str)
    assert sheet["subject"].tolist() == ["01", "02"] and (sheet["bids_session"] == "pre").all()
    assert (out.parent / sheet.loc[0, "nifti"] / "flair.nii.gz").resolve().name == "sub-01_ses-pre_FLAIR.nii.gz"
    assert oncoflow([*args, "--each-session"]) == 0
    sheet = pd.read_csv(out, sep="\t", dtype=str)
    assert sheet["subject"].tolist() == ["01_post", "01_pre", "02_post", "02_pre"]
    assert sheet["bids_subject"].tolist() == ["01", "01", "02", "02"]
