"""oncoflow.ingest on real scanner DICOM (../shared/data/dicom): series discovery, broken-series
detection, modality mapping, dcm2niix conversion against reference conversions, de-identification."""

from __future__ import annotations

import gzip
import json
import random
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from oncoflow.ingest import (IngestError, IngestWarning, SeriesInfo, convert_series, deidentify_sidecar,
                             find_identifiers, find_nifti_files, find_series, ingest_nifti, ingest_nifti_folder,
                             ingest_subject, map_series_to_modalities, scan_dicom_dir)
from oncoflow.ingest.deid import DEMOGRAPHIC_KEYS

DICOM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dicom"
GE = DICOM / "ge_mprage_t1"
SIEMENS = DICOM / "siemens_orientation"
SIEMENS_SERIES = sorted(p.relative_to(SIEMENS).as_posix() for p in SIEMENS.glob("[acs]*/*") if p.is_dir())


@pytest.fixture(scope="module")
def dicom_root() -> Path:
    if not (GE / "dicom").is_dir() or not SIEMENS.is_dir():
        pytest.skip(f"real DICOM test data not found at {DICOM} (only in the development checkout)")
    return DICOM


@pytest.fixture(scope="module")
def ge_series(dicom_root) -> SeriesInfo:
    (series,) = find_series(GE / "dicom")
    return series


def copy_series(src_files, dst_dir: Path, *, rng: random.Random, nested: bool = True) -> list[Path]:
    """Copy files under opaque, shuffled names, spread over nested sub-folders."""
    out = []
    for f in src_files:
        sub = dst_dir / (f"{rng.randrange(3)}/{rng.randrange(2)}" if nested else "")
        sub.mkdir(parents=True, exist_ok=True)
        dst = sub / f"{rng.getrandbits(64):016x}"
        shutil.copyfile(f, dst)
        out.append(dst)
    return out


def dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(("MR", "i")) and not p.suffix == ".nii")


# --- conversion against dcm2niix's reference conversions -------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize("folder", SIEMENS_SERIES or ["(data absent)"])
def test_siemens_conversion_matches_reference(dicom_root, folder, tmp_path):
    (series,) = scan_dicom_dir(SIEMENS / folder).series  # axasc35 also holds a stray .nii: skipped
    assert not series.broken, series.reason
    ref_nii = next((SIEMENS / "reference").glob(f"*_{series.series_number}.nii"))
    out_nii, out_json = tmp_path / "x.nii.gz", tmp_path / "x.json"
    convert_series(series.files, out_nii, out_json)

    ours, ref = nib.load(out_nii), nib.load(ref_nii)
    assert ours.shape == ref.shape
    assert np.abs(ours.affine - ref.affine).max() < 1e-3
    assert np.array_equal(np.asanyarray(ours.dataobj), np.asanyarray(ref.dataobj))
    # slice order (ascending/descending/interleaved) survives: same slice timing as the reference
    meta, ref_meta = json.loads(out_json.read_text()), json.loads(ref_nii.with_suffix(".json").read_text())
    assert np.allclose(meta["SliceTiming"], ref_meta["SliceTiming"], atol=1e-4)
    assert meta["SeriesDescription"] == ref_meta["SeriesDescription"]


def dicom_volume_and_affine(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: voxels indexed (column, row, slice) and their RAS affine, from pydicom."""
    slices = [pydicom.dcmread(f) for f in files]
    iop = np.asarray(slices[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    slices.sort(key=lambda ds: float(np.dot(ds.ImagePositionPatient, normal)))
    first, last = (np.asarray(s.ImagePositionPatient, float) for s in (slices[0], slices[-1]))
    row_mm, col_mm = (float(v) for v in slices[0].PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1] = iop[:3] * col_mm, iop[3:] * row_mm
    lps[:3, 2], lps[:3, 3] = (last - first) / (len(slices) - 1), first
    volume = np.stack([s.pixel_array.T for s in slices], axis=-1)
    return volume, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


@pytest.mark.shared_data
def test_ge_conversion_matches_reference_sidecar_and_dicom_geometry(ge_series, tmp_path):
    out_nii, out_json = tmp_path / "t1.nii.gz", tmp_path / "t1.json"
    convert_series(ge_series.files, out_nii, out_json)

    meta = json.loads(out_json.read_text())
    ref = json.loads((GE / "reference" / "3D_Ax_T1_MP-RAGE_R22_5.json").read_text())
    for key in ("SeriesDescription", "ProtocolName", "SeriesNumber", "SliceThickness",
                "SpacingBetweenSlices", "EchoTime", "RepetitionTime", "InversionTime", "FlipAngle",
                "ImageOrientationPatientDICOM", "PhaseEncodingDirection", "MRAcquisitionType"):
        if key in ref:
            assert meta[key] == ref[key], key

    img = nib.load(out_nii)
    assert img.shape == (256, 256, 130)
    volume, dicom_affine = dicom_volume_and_affine(ge_series.files)
    # NIfTI voxel index -> DICOM voxel index: a signed permutation with an integer offset (dcm2niix flips rows)
    index_map = np.linalg.inv(dicom_affine) @ img.affine
    perm = np.round(index_map)
    assert np.allclose(index_map, perm, atol=1e-3)
    assert np.abs(img.affine - dicom_affine @ perm).max() < 1e-3
    grid = np.indices(img.shape).reshape(3, -1)
    src = (perm[:3, :3] @ grid + perm[:3, 3:]).astype(int)
    expected = volume[src[0], src[1], src[2]].reshape(img.shape)
    assert np.array_equal(np.asanyarray(img.dataobj), expected)


@pytest.mark.shared_data
def test_convert_refuses_input_that_splits_into_several_images(ge_series, dicom_root, tmp_path):
    mixed = ge_series.files + dicom_files(SIEMENS / "ax/axasc35")
    with pytest.raises(IngestError, match=r"split .* into 2 images"):
        convert_series(mixed, tmp_path / "x.nii.gz", tmp_path / "x.json")
    assert not (tmp_path / "x.nii.gz").exists()


def test_convert_reports_dcm2niix_failure_and_missing_binary(tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all" * 20)
    with pytest.raises(IngestError, match=r"dcm2niix failed .*junk\.dcm"):
        convert_series([junk], tmp_path / "x.nii.gz", tmp_path / "x.json")
    with pytest.raises(IngestError, match="dcm2niix not found"):
        convert_series([junk], tmp_path / "x.nii.gz", tmp_path / "x.json", dcm2niix=str(tmp_path / "nope"))


# --- series discovery and broken series --------------------------------------------------------------------


@pytest.mark.shared_data
def test_find_series_in_mixed_nested_folder_reports_junk(ge_series, dicom_root, tmp_path):
    rng = random.Random(0)
    export = tmp_path / "export"
    sources = {"3D Ax T1 MP-RAGE_R22": ge_series.files,
               "ax_asc_35sl": dicom_files(SIEMENS / "ax/axasc35"),
               "cor_int_36sl": dicom_files(SIEMENS / "cor/corint36")}
    shuffled = [(desc, f) for desc, files in sources.items() for f in files]
    rng.shuffle(shuffled)
    copies: dict[str, set[Path]] = {d: set() for d in sources}
    for desc, f in shuffled:
        copies[desc].update(copy_series([f], export, rng=rng))
    (export / "1").mkdir(exist_ok=True)
    junk = export / "1" / "README.txt"
    junk.write_text("exported by PACS viewer\n")
    stray = export / "6_ax_asc_35sl.nii"
    shutil.copyfile(SIEMENS / "ax/axasc35/6_ax_asc_35sl.nii", stray)

    with pytest.warns(IngestWarning, match="README.txt") as record:
        series = find_series(export)
    assert "6_ax_asc_35sl.nii" in str(record[0].message)
    assert {s.series_description: set(s.files) for s in series} == copies
    assert {s.series_description: s.n_files for s in series} == {d: len(f) for d, f in sources.items()}
    assert not any(s.broken for s in series)
    scan = scan_dicom_dir(export)
    assert {s.path for s in scan.skipped} == {junk, stray}
    assert all("not a DICOM file" in s.reason for s in scan.skipped)
    # the parallel reader gives the same answer
    assert [(s.uid, s.files) for s in scan_dicom_dir(export, workers=2).series] == [(s.uid, s.files) for s in series]


@pytest.mark.shared_data
def test_missing_middle_slice_is_flagged_and_never_chosen(ge_series, tmp_path):
    copies = copy_series(ge_series.files, tmp_path / "ge", rng=random.Random(1), nested=False)
    middle = next(c for c in copies if pydicom.dcmread(c, stop_before_pixels=True).InstanceNumber == 65)
    middle.unlink()
    (series,) = find_series(tmp_path / "ge")
    assert series.n_files == 129 and series.broken
    assert "InstanceNumber gap: 1 missing (65)" in series.reason
    assert "non-uniform slice spacing" in series.reason and "2.400 mm" in series.reason

    result = map_series_to_modalities([series], {"t1": ["mp-?rage"]})
    assert result.chosen == {}
    with pytest.raises(IngestError, match=r"(?s)\[sub-9\].*only matching series are broken.*InstanceNumber gap"):
        result.require(["t1"], "sub-9")


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # pydicom, on the file cut inside its header
def test_truncated_files_are_reported_by_name(ge_series, dicom_root, tmp_path):
    rng = random.Random(2)
    copies = copy_series(dicom_files(SIEMENS / "sag/sagasc35"), tmp_path / "ex", rng=rng, nested=False)
    copies += copy_series(ge_series.files[:5], tmp_path / "ex", rng=rng, nested=False)
    half = copies[0]
    half.write_bytes(half.read_bytes()[: half.stat().st_size // 2])
    header_cut = copies[-1]  # cut inside the header, before SeriesInstanceUID
    header_cut.write_bytes(header_cut.read_bytes()[:400])

    scan = scan_dicom_dir(tmp_path / "ex")
    sag = next(s for s in scan.series if s.series_description == "sag_asc_35sl")
    assert sag.broken and half not in sag.files and sag.n_files == 1
    assert f"{half}: truncated: pixel data needs 294912 bytes" in sag.reason
    assert sag.problems == ["1 unreadable or truncated file(s)"]  # path-free: safe for series.tsv
    (skipped,) = scan.skipped
    assert skipped.path == header_cut and "truncated inside its header" in skipped.reason

    with pytest.raises(IngestError, match=rf"(?s)\[sub-3\].*only matching series are broken.*{half.name}"):
        ingest_subject("sub-3", tmp_path / "ex", {"t2": ["sag"]}, tmp_path / "out", modalities=["t2"])
    assert not (tmp_path / "out" / "t2.nii.gz").exists()


@pytest.mark.shared_data
def test_header_larger_than_first_read_falls_back_to_file(ge_series, monkeypatch):
    import oncoflow.ingest.series as series_module

    monkeypatch.setattr(series_module, "_HEAD_BYTES", 1000)  # GE image attributes start after ~4 kB
    (series,) = find_series(GE / "dicom")
    assert series.files == ge_series.files and not series.broken


def test_find_series_missing_folder(tmp_path):
    with pytest.raises(IngestError, match="DICOM folder not found"):
        find_series(tmp_path / "nope")


# --- modality mapping ----------------------------------------------------------------------------------------


def fake_series(number: int, description: str, protocol: str = "", n: int = 10) -> SeriesInfo:
    return SeriesInfo(uid=f"1.2.3.{number}", series_number=number, series_description=description,
                      protocol_name=protocol, files=[Path(f"/x/{number}/{i}") for i in range(n)])


RULES = {
    "t1": [r"mprage|mp-rage", r"^(?!.*(post|gd|\+c)).*\bt1"],
    "t1ce": [r"t1.*(post|gd|\+c)"],
    "t2": [r"\bt2\b(?!.*flair)"],
    "flair": [r"flair"],
}


def test_mapping_matched_unmatched_and_rule_order():
    series = [fake_series(1, "Localizer"), fake_series(2, "AX T1 SE"), fake_series(3, "SAG MPRAGE"),
              fake_series(4, "AX T1 POST GD"), fake_series(5, "AX T2 TSE"), fake_series(6, "", "AX FLAIR 3mm"),
              fake_series(7, "DWI b1000")]
    result = map_series_to_modalities(series, RULES)
    assert {m: s.series_number for m, s in result.chosen.items()} == {"t1": 3, "t1ce": 4, "t2": 5, "flair": 6}
    assert [s.series_number for s in result.unmatched] == [1, 7]
    assert result.ambiguous == []
    assert result.chosen_match("flair").field == "ProtocolName"  # empty description: protocol matched
    assert result.status(series[1])[1] == "not selected"  # T1 SE loses to MPRAGE by rule order
    report = result.format_report()
    assert report.splitlines()[0].split()[:3] == ["series", "description", "protocol"]
    assert "SAG MPRAGE" in report and "unmatched" in report and "not selected" in report
    assert result.require(["t1", "flair"], "sub-1") == {"t1": series[2], "flair": series[5]}


def test_mapping_tie_is_ambiguous_and_refused():
    series = [fake_series(3, "SAG MPRAGE"), fake_series(8, "AX FLAIR"), fake_series(9, "AX FLAIR")]
    result = map_series_to_modalities(series, RULES)
    (amb,) = result.ambiguous
    assert amb.modalities == ("flair",) and [s.series_number for s in amb.series] == [8, 9]
    assert "flair" not in result.chosen and "AMBIGUOUS flair" in result.format_report()
    with pytest.raises(IngestError, match=r'(?s)\[sub-2\].*flair.*ambiguous.*tie.*#8 "AX FLAIR", #9 "AX FLAIR"'):
        result.require(["t1", "flair"], "sub-2")


def test_mapping_series_matching_several_modalities():
    rules = {"t1": ["t1"], "flair": ["flair"]}
    # outranked elsewhere: the T1 FLAIR series loses 'flair' to nothing, wins both -> ambiguous
    result = map_series_to_modalities([fake_series(4, "T1 FLAIR")], rules)
    (amb,) = result.ambiguous
    assert amb.modalities == ("t1", "flair") and result.chosen == {}
    # with a strictly preferred flair series (better rule rank), the assignment is unambiguous
    rules = {"t1": ["t1"], "flair": ["^ax flair", "flair"]}
    series = [fake_series(4, "T1 FLAIR"), fake_series(5, "AX FLAIR")]
    result = map_series_to_modalities(series, rules)
    assert result.ambiguous == []
    assert {m: s.series_number for m, s in result.chosen.items()} == {"t1": 4, "flair": 5}


def test_mapping_missing_required_modality_names_subject_and_series():
    series = [fake_series(3, "SAG MPRAGE"), fake_series(4, "AX T1 POST GD"), fake_series(7, "DWI b1000")]
    result = map_series_to_modalities(series, RULES)
    with pytest.raises(IngestError) as err:
        result.require(["t1", "t1ce", "t2", "flair"], "sub-007")
    msg = str(err.value)
    assert msg.startswith("[sub-007]")
    assert "'t2' is missing" in msg and "'flair' is missing" in msg and "'t1'" not in msg.split("series found")[0]
    for desc in ("SAG MPRAGE", "AX T1 POST GD", "DWI b1000"):
        assert desc in msg


def test_mapping_rejects_bad_rules():
    with pytest.raises(IngestError, match="invalid regex in rules for 't1'"):
        map_series_to_modalities([], {"t1": ["(unclosed"]})
    with pytest.raises(IngestError, match="must be a list"):
        map_series_to_modalities([], {"t1": "mprage"})


# --- de-identification ---------------------------------------------------------------------------------------

IDENTIFIERS = {
    "PatientName": "DOE^JANE", "PatientID": "MRN1234567", "OtherPatientIDs": "OTHERID424242",
    "PatientBirthDate": "19700523", "AccessionNumber": "ACC7654321", "StudyID": "STUDY998877",
    "InstitutionName": "Springfield General Hospital", "InstitutionAddress": "742 Evergreen Terrace Springfield",
    "InstitutionalDepartmentName": "Neuroradiology Wing Seven", "ReferringPhysicianName": "HOUSE^GREGORY",
    "PerformingPhysicianName": "CUDDY^LISA", "OperatorsName": "TECH^TERRY", "StationName": "MRSTATION77",
    "DeviceSerialNumber": "SN99887766", "ImageComments": "pt DOE^JANE MRN1234567", "StudyDate": "20240229",
    "StudyDescription": "MRN1234567 brain tumour follow-up",
}


def write_identified_copy(files: list[Path], dst: Path, *, description: str | None = None) -> list[str]:
    """Copy a real series with identifying tags set and fresh UIDs; returns the identifying strings."""
    dst.mkdir(parents=True)
    study, series_uid, frame = generate_uid(), generate_uid(), generate_uid()
    uids = [study, series_uid, frame]
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        for keyword, value in IDENTIFIERS.items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid, frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        if description:
            ds.SeriesDescription = description
        uids.append(ds.SOPInstanceUID)
        ds.save_as(dst / f"IM{i:05d}")
    return list(IDENTIFIERS.values()) + uids


def output_texts(out_dir: Path) -> dict[str, str]:
    """Every output file as text (latin-1), NIfTI both compressed and decompressed."""
    texts = {}
    for path in out_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            texts[path.name] = raw.decode("latin-1")
            if path.name.endswith(".gz"):
                texts[path.name + " (decompressed)"] = gzip.decompress(raw).decode("latin-1")
    return texts


@pytest.mark.shared_data
def test_ingest_subject_leaks_no_identifier(ge_series, dicom_root, tmp_path):
    export = tmp_path / "DOE^JANE_MRN1234567"  # PACS exports often name folders after the patient
    secrets = write_identified_copy(ge_series.files, export / "t1")
    secrets += write_identified_copy(dicom_files(SIEMENS / "ax/axdesc36"), export / "epi")
    (export / "DICOMDIR.txt").write_text("DOE^JANE MRN1234567\n")
    out = tmp_path / "out" / "sub-001"

    outputs = ingest_subject("sub-001", export, {"t1": ["mp-?rage"]}, out, modalities=["t1"])

    assert outputs == {"t1": out / "t1.nii.gz"}
    assert sorted(p.name for p in out.iterdir()) == ["series.tsv", "t1.json", "t1.nii.gz"]
    assert len(secrets) == 2 * (len(IDENTIFIERS) + 3) + 130 + 2
    for name, text in output_texts(out).items():
        assert find_identifiers(text, secrets) == [], name
    meta = json.loads((out / "t1.json").read_text())
    assert meta["oncoflow_subject"] == "sub-001" and meta["oncoflow_modality"] == "t1"
    assert meta["SeriesDescription"] == "3D Ax T1 MP-RAGE_R22"
    assert not [k for k in meta if k.startswith(("Patient", "Institution")) and k != "PatientPosition"]
    hdr = nib.load(out / "t1.nii.gz").header
    assert hdr["descrip"] == b"" and hdr["aux_file"] == b"" and hdr["db_name"] == b"" and not hdr.extensions
    rows = [line.split("\t") for line in (out / "series.tsv").read_text().splitlines()]
    assert rows[0][:7] == ["series_number", "series_description", "protocol_name", "n_files", "modality",
                           "status", "detail"]
    assert {(r[1], r[3], r[4], r[5]) for r in rows[1:]} == {
        ("3D Ax T1 MP-RAGE_R22", "130", "t1", "converted"), ("ax_desc_36sl", "2", "", "unmatched")}

    # scrubbing changed no voxel and no geometry: same as converting the untouched originals
    convert_series(ge_series.files, tmp_path / "plain.nii.gz", tmp_path / "plain.json")
    plain, ingested = nib.load(tmp_path / "plain.nii.gz"), nib.load(out / "t1.nii.gz")
    assert np.array_equal(plain.affine, ingested.affine)
    assert np.array_equal(np.asanyarray(plain.dataobj), np.asanyarray(ingested.dataobj))


@pytest.mark.shared_data
def test_ingest_subject_refuses_identifier_in_kept_field(ge_series, tmp_path):
    # A patient name typed into the series description would survive key-based de-identification.
    write_identified_copy(ge_series.files, tmp_path / "ex", description="MPRAGE for DOE^JANE")
    with pytest.raises(IngestError, match=r"\[sub-002\] de-identification check failed: .*PatientName.* t1\.json"):
        ingest_subject("sub-002", tmp_path / "ex", {"t1": ["mprage"]}, tmp_path / "out", modalities=["t1"])
    assert list((tmp_path / "out").iterdir()) == []  # staged outputs removed, nothing published


@pytest.mark.shared_data
def test_ingest_subject_missing_modality_names_subject_modality_and_series(dicom_root, tmp_path):
    with pytest.raises(IngestError) as err:
        ingest_subject("sub-6", GE / "dicom", RULES, tmp_path / "out", modalities=["t1", "flair"])
    msg = str(err.value)
    assert msg.startswith("[sub-6]") and "'flair' is missing" in msg and '#5 "3D Ax T1 MP-RAGE_R22"' in msg
    assert not (tmp_path / "out").exists()


@pytest.mark.shared_data
def test_ingest_subject_rejects_4d_series(dicom_root, tmp_path):
    with pytest.raises(IngestError, match=r'\[sub-4\] flair from series #7 "ax_desc_35sl": expected one 3D volume'):
        ingest_subject("sub-4", SIEMENS / "ax/axdesc35", {"flair": ["ax_"]}, tmp_path / "out", modalities=["flair"])


def test_deidentify_sidecar_keys():
    meta = {"PatientName": "X", "PatientID": "X", "PatientSex": "F", "PatientAge": "050Y", "PatientPosition": "HFS",
            "StudyInstanceUID": "1.2", "ReferencedImageUIDs": ["1.3"], "AcquisitionDateTime": "2020",
            "StudyDate": "2020", "AcquisitionTime": "13:49:35", "InstitutionAddress": "X", "StationName": "X",
            "EchoTime": 0.03, "RepetitionTime": 3, "InversionTime": 1, "SeriesDescription": "t1", "SliceTiming": [0]}
    kept = deidentify_sidecar(meta)
    assert sorted(kept) == ["EchoTime", "InversionTime", "PatientPosition", "RepetitionTime", "SeriesDescription",
                            "SliceTiming"]
    assert set(deidentify_sidecar(meta, keep=DEMOGRAPHIC_KEYS)) == set(kept) | {"PatientSex", "PatientAge"}
    assert "PatientName" in meta  # input untouched


def test_find_identifiers():
    text = '{"a": "Doe Jane", "shim": [10737, 42], "b": "x-MRN123-y"}'
    assert find_identifiers(text, ["DOE^JANE", "1073", "42", "MRN123", "absent", ""]) == ["DOE^JANE", "42", "MRN123"]


# --- already converted NIfTI input -----------------------------------------------------------------------------


@pytest.mark.shared_data
def test_ingest_nifti_keeps_voxels_and_geometry(ge_series, dicom_root, tmp_path):
    src = tmp_path / "in" / "T1_DOE_JANE.nii"
    src.parent.mkdir()
    convert_series(ge_series.files, tmp_path / "conv.nii", src.with_suffix(".json"))
    conv = nib.load(tmp_path / "conv.nii", mmap=False)
    conv.header["descrip"] = b"DOE^JANE MRN1234567"
    nib.save(conv, src)  # uncompressed input with identifying header text and sidecar
    img = nib.load(src, mmap=False)
    sidecar = json.loads(src.with_suffix(".json").read_text()) | {"PatientName": "DOE^JANE", "PatientID": "MRN1234567"}
    src.with_suffix(".json").write_text(json.dumps(sidecar))

    out = tmp_path / "out"
    assert ingest_nifti("sub-5", {"t1": src}, out) == {"t1": out / "t1.nii.gz"}
    new = nib.load(out / "t1.nii.gz")
    assert np.array_equal(new.affine, img.affine) and new.header.get_sform(coded=True)[1] == img.header.get_sform(coded=True)[1]
    assert np.array_equal(np.asanyarray(new.dataobj), np.asanyarray(img.dataobj))
    for name, text in output_texts(out).items():
        assert find_identifiers(text, ["DOE^JANE", "MRN1234567", "T1_DOE_JANE"]) == [], name
    meta = json.loads((out / "t1.json").read_text())
    assert meta["oncoflow_subject"] == "sub-5" and meta["SeriesDescription"] == "3D Ax T1 MP-RAGE_R22"

    truncated = tmp_path / "in" / "cut.nii.gz"
    shutil.copyfile(out / "t1.nii.gz", truncated)
    truncated.write_bytes(truncated.read_bytes()[:50_000])
    with pytest.raises(IngestError, match=r"\[sub-5\] t1 from .*cut\.nii\.gz: cannot load"):
        ingest_nifti("sub-5", {"t1": truncated}, tmp_path / "out2")
    with pytest.raises(IngestError, match=r"\[sub-5\] flair from .*ax_asc_35sl_6\.nii: expected one 3D volume"):
        ingest_nifti("sub-5", {"flair": SIEMENS / "reference" / "ax_asc_35sl_6.nii"}, tmp_path / "out3")


def _nifti(path: Path, shape=(12, 10, 6), affine=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([0.9, 0.9, 5.5, 1.0]) if affine is None else affine
    data = np.random.default_rng(0).integers(0, 500, shape).astype(np.int16)
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def test_ingest_nifti_folder_copies_each_modality_untouched(tmp_path):
    folder = tmp_path / "sub-7"
    oblique = np.array([[0.9, 0.1, 0, -90], [-0.1, 0.9, 0, 20], [0, 0, 5.5, -40], [0, 0, 0, 1]])
    sources = {"t1": _nifti(folder / "t1.nii.gz", affine=oblique), "flair": _nifti(folder / "flair.nii", (8, 9, 7))}
    _nifti(folder / "t1ce_brain_mask.nii.gz")  # other files are ignored
    out = tmp_path / "raw"
    assert ingest_nifti_folder("sub-7", folder, out, modalities=["t1", "flair"]) == {
        "t1": out / "t1.nii.gz", "flair": out / "flair.nii.gz"}
    for modality, src in sources.items():
        a, b = nib.load(src), nib.load(out / f"{modality}.nii.gz")
        assert np.array_equal(a.affine, b.affine) and a.shape == b.shape
        assert np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))
    rows = (out / "series.tsv").read_text().splitlines()
    assert len(rows) == 3 and "NIfTI input" in rows[1]


def test_ingest_nifti_folder_missing_modality_names_subject_and_file(tmp_path):
    folder = tmp_path / "sub-8"
    _nifti(folder / "t1.nii.gz")
    _nifti(folder / "T2w.nii.gz")
    with pytest.raises(IngestError) as err:
        ingest_nifti_folder("sub-8", folder, tmp_path / "raw", modalities=["t1", "t2", "flair"])
    msg = str(err.value)
    assert msg.startswith("[sub-8]") and f"modality 't2' is missing: no {folder / 't2.nii.gz'}" in msg
    assert "'flair' is missing" in msg and "the folder holds T2w.nii.gz, t1.nii.gz" in msg
    assert not (tmp_path / "raw" / "t1.nii.gz").exists()
    _nifti(folder / "t2.nii.gz")
    _nifti(folder / "t2.nii")
    with pytest.raises(IngestError, match=r"\[sub-8\] both t2\.nii\.gz and t2\.nii for modality 't2'"):
        find_nifti_files("sub-8", folder, ["t1", "t2"])
    with pytest.raises(IngestError, match=r"\[sub-8\] NIfTI folder not found"):
        find_nifti_files("sub-8", tmp_path / "nowhere", ["t1"])
