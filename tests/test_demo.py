"""Tests for the synthetic clinical demo cohort (oncoflow.demo): real files, real dcm2niix."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from helpers_metrics import pairwise_auc

from oncoflow.demo import PROTOCOLS, SAMPLE_COLUMNS, dcm2niix_orientation, make_demo_cohort, write_dicom_series
from oncoflow.demo.phantom import TISSUE_INTENSITY, load_phantom

N_SUBJECTS = 16
DESCRIPTIONS = {p.description for p in PROTOCOLS}


def _dcm2niix() -> str:
    exe = shutil.which("dcm2niix") or str(Path(sys.executable).parent / "dcm2niix")
    if not Path(exe).exists():
        pytest.skip("dcm2niix not available")
    return exe


def _convert(dicom_dir: Path, out_dir: Path) -> dict[str, nib.Nifti1Image]:
    """Run dcm2niix; return images keyed by the SeriesDescription in their JSON sidecar."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [_dcm2niix(), "-z", "y", "-b", "y", "-f", "%s_%d", "-o", str(out_dir), str(dicom_dir)],
        check=True, capture_output=True, text=True,
    )
    images = {}
    for sidecar in sorted(out_dir.glob("*.json")):
        desc = json.loads(sidecar.read_text())["SeriesDescription"]
        images[desc] = nib.load(sidecar.with_suffix(".nii.gz"))
    assert len(list(out_dir.glob("*.nii.gz"))) == len(images)
    return images


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    sheet = make_demo_cohort(out, N_SUBJECTS, seed=0, voxel_scale=2.0, external_fraction=0.25)
    assert sheet == out / "samples.tsv"
    return sheet


def test_sample_sheet(cohort: Path) -> None:
    root = cohort.parent
    header = cohort.read_text().splitlines()[0].split("\t")
    assert tuple(header) == SAMPLE_COLUMNS
    rows = _read_tsv(cohort)
    assert [r["subject"] for r in rows] == [f"demo{i:03d}" for i in range(1, N_SUBJECTS + 1)]
    labels = [int(r["label"]) for r in rows]
    assert set(labels) == {0, 1} and abs(sum(labels) - N_SUBJECTS / 2) <= 1
    assert [r["cohort"] for r in rows] == ["train"] * 12 + ["external"] * 4
    for r in rows:
        assert r["dicom"] == f"dicom/{r['subject']}" and (root / r["dicom"]).is_dir()
        assert r["tumor_mask"] == f"masks/{r['subject']}_tumor.nii.gz" and (root / r["tumor_mask"]).is_file()
        assert r["tumor_mask_space"] == "t1ce"
        assert 18 <= int(r["age"]) <= 90 and r["sex"] in {"M", "F"}
    assert (root / "README.md").read_text().startswith("# oncoflow synthetic demo cohort")
    truth = _read_tsv(root / "truth.tsv")
    assert [t["subject"] for t in truth] == [r["subject"] for r in rows]
    assert [t["label"] for t in truth] == [r["label"] for r in rows]


def test_dicom_folder_looks_like_a_pacs_export(cohort: Path) -> None:
    root = cohort.parent
    rows = _read_tsv(cohort)
    nested = [any(p.is_dir() for p in (root / r["dicom"]).iterdir()) for r in rows]
    assert any(nested) and not all(nested)  # some exports keep images in a subfolder

    subject_dir = root / rows[0]["dicom"]
    files = sorted(p for p in subject_dir.rglob("*") if p.is_file())
    assert all(re.fullmatch(r"IM\d{6}", p.name) for p in files)
    datasets = [pydicom.dcmread(p) for p in files]
    series: dict[str, list[pydicom.Dataset]] = {}
    for ds in datasets:
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.SOPClassUID == pydicom.uid.MRImageStorage and ds.Modality == "MR"
        series.setdefault(ds.SeriesInstanceUID, []).append(ds)
    assert len(series) == 4
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
    assert {s[0].SeriesDescription for s in series.values()} == DESCRIPTIONS
    for slices in series.values():
        assert sorted(int(ds.InstanceNumber) for ds in slices) == list(range(1, len(slices) + 1))
        assert len({(ds.SeriesTime, ds.AcquisitionTime, ds.SeriesDate) for ds in slices}) == 1
        assert slices[0].ProtocolName == slices[0].SeriesDescription
    # Series are interleaved in the (sorted) file names, as in a real export.
    order = [ds.SeriesInstanceUID for ds in datasets]
    assert sum(a != b for a, b in zip(order, order[1:])) > 3

    # Fake identifiers are present (so de-identification can be tested).
    ds = datasets[0]
    assert re.fullmatch(r"DOE\^(JANE|JOHN)1", str(ds.PatientName))
    assert re.fullmatch(r"MRN\d{7}", ds.PatientID)
    assert re.fullmatch(r"\d{8}", ds.PatientBirthDate) and ds.AccessionNumber and ds.InstitutionName
    assert ds.InstitutionAddress and ds.PatientSex in {"M", "F"}
    assert float(ds.MagneticFieldStrength) > 0 and ds.Manufacturer
    ids = {pydicom.dcmread(next(p for p in (root / r["dicom"]).rglob("IM*")), stop_before_pixels=True).PatientID
           for r in rows}
    assert len(ids) == len(rows)


def test_dcm2niix_converts_four_series_and_mask_matches_t1ce(cohort: Path, tmp_path: Path) -> None:
    root = cohort.parent
    rows = {r["subject"]: r for r in _read_tsv(cohort)}
    truth = {t["subject"]: t for t in _read_tsv(root / "truth.tsv")}
    for subject in ("demo001", "demo002", "demo016"):
        images = _convert(root / rows[subject]["dicom"], tmp_path / subject)
        assert set(images) == DESCRIPTIONS
        for proto in PROTOCOLS:
            img = images[proto.description]
            expected = tuple(int(v) for v in truth[subject][f"{proto.modality}_shape"].split("x"))
            assert img.shape == expected
            zooms = [float(v) for v in truth[subject][f"{proto.modality}_voxel_mm"].split("x")]
            np.testing.assert_allclose(img.header.get_zooms()[:3], zooms, atol=2e-3)
            assert 1.8 * 2 - 0.01 <= zooms[0] <= 2.2 * 2 + 0.01  # voxel_scale = 2
        mask = nib.load(root / rows[subject]["tumor_mask"])
        t1ce = images["AX T1 POST GAD"]
        assert mask.shape == t1ce.shape
        np.testing.assert_allclose(mask.affine, t1ce.affine, atol=1e-3)
        data = np.asarray(mask.dataobj)
        assert data.dtype == np.uint8 and set(np.unique(data)) == {0, 1}
        assert data.sum() == int(truth[subject]["mask_voxels"]) > 0


def test_phenotype_separates_labels(cohort: Path, tmp_path: Path) -> None:
    """Tumor enhancement on the converted t1ce (inside the mask) predicts label 0."""
    root = cohort.parent
    scores, labels = [], []
    for r in _read_tsv(cohort):
        t1ce = _convert(root / r["dicom"], tmp_path / r["subject"])["AX T1 POST GAD"].get_fdata()
        mask = np.asarray(nib.load(root / r["tumor_mask"]).dataobj).astype(bool)
        reference = np.median(t1ce[t1ce > 0.3 * np.percentile(t1ce, 99)])  # ~ brain/scalp level
        scores.append(np.percentile(t1ce[mask], 90) / reference)
        labels.append(int(r["label"]))
    auc = pairwise_auc(np.array(labels) == 0, np.array(scores))
    assert auc > 0.75, auc


def test_head_has_skull_and_scalp(cohort: Path, tmp_path: Path) -> None:
    phantom = load_phantom()
    head, brain = phantom.head_mask, phantom.brain_mask
    assert (head & ~brain).sum() / head.sum() > 0.3
    t1 = phantom.contrasts["t1"]
    scalp_fat = phantom.tissues["fat"] > 0.8
    bone = phantom.tissues["bone"] > 0.8
    assert scalp_fat.sum() > 1000 and bone.sum() > 1000
    assert t1[scalp_fat].mean() > TISSUE_INTENSITY["wm"][0] > 5 * t1[bone].mean()  # bright fat, dark bone

    # On the converted T1: far more signal-bearing tissue than the (scaled) MNI brain.
    row = _read_tsv(cohort)[0]
    img = _convert(cohort.parent / row["dicom"], tmp_path)["AX T1 PRE"]
    data = img.get_fdata()
    signal_ml = (data > 0.25 * np.percentile(data, 99)).sum() * np.prod(img.header.get_zooms()[:3]) / 1000
    brain_ml = brain.sum() * 8 / 1000 * 0.93**3
    assert signal_ml > 1.3 * brain_ml


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic(tmp_path: Path) -> None:
    a = make_demo_cohort(tmp_path / "a", 4, seed=3, voxel_scale=2.0).parent
    b = make_demo_cohort(tmp_path / "b", 4, seed=3, voxel_scale=2.0).parent
    c = make_demo_cohort(tmp_path / "c", 4, seed=4, voxel_scale=2.0).parent
    tree_a, tree_b, tree_c = _tree(a), _tree(b), _tree(c)
    assert tree_a == tree_b  # every byte: sheets, masks, DICOM pixels and headers
    assert any(k.startswith("dicom/") for k in tree_a) and "masks/demo001_tumor.nii.gz" in tree_a
    assert tree_c["samples.tsv"] != tree_a["samples.tsv"] or tree_c["truth.tsv"] != tree_a["truth.tsv"]
    assert tree_c["masks/demo001_tumor.nii.gz"] != tree_a["masks/demo001_tumor.nii.gz"]
    pix = lambda root: sorted(pydicom.dcmread(p).PixelData for p in root.rglob("IM*"))  # noqa: E731
    assert pix(a) == pix(b) and pix(a) != pix(c)


@pytest.mark.parametrize("oblique", [False, True])
def test_write_dicom_series_roundtrip(tmp_path: Path, oblique: bool) -> None:
    rng = np.random.default_rng(1)
    volume = rng.integers(0, 4000, size=(12, 10, 6)).astype(np.uint16)
    t = np.deg2rad(10.0 if oblique else 0.0)
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([-1.9, -2.1, 4.0])  # i -> L, j -> P, k -> S (axial DICOM layout)
    affine[:3, 3] = [11.0, 23.0, -40.0]
    paths = write_dicom_series(
        volume, affine, tmp_path / "dcm", series_description="AX TEST", series_number=7,
        patient={"PatientName": "DOE^JANE9", "PatientID": "MRN0000009"},
        study_uid=pydicom.uid.generate_uid(entropy_srcs=["s"]), series_uid=pydicom.uid.generate_uid(entropy_srcs=["x"]),
    )
    assert [p.name for p in paths] == [f"IM{k:06d}" for k in range(1, 7)]
    ds = pydicom.dcmread(paths[2])
    np.testing.assert_array_equal(ds.pixel_array, volume[:, :, 2].T)
    assert ds.SeriesDescription == "AX TEST" and int(ds.SeriesNumber) == 7 and str(ds.PatientName) == "DOE^JANE9"
    np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [2.1, 1.9])
    img = _convert(tmp_path / "dcm", tmp_path / "nii")["AX TEST"]
    expected, expected_affine = dcm2niix_orientation(volume, affine)
    np.testing.assert_array_equal(np.asarray(img.dataobj), expected)
    np.testing.assert_allclose(img.affine, expected_affine, atol=1e-3)


def test_write_dicom_series_rescales_float(tmp_path: Path) -> None:
    volume = np.linspace(-3.5, 12.25, 4 * 5 * 3).reshape(4, 5, 3)
    paths = write_dicom_series(
        volume, np.diag([-2.0, -2.0, 3.0, 1.0]), tmp_path, series_description="F", series_number=1,
        patient={}, study_uid="1.2.3", series_uid="1.2.3.4",
    )
    ds = pydicom.dcmread(paths[1])
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(values, volume[:, :, 1].T, atol=1e-3)
