"""Ingest one subject: DICOM export (or NIfTI files) -> out_dir/<modality>.nii.gz + .json + series.tsv.

Outputs are staged in a hidden folder inside out_dir and moved into place only when every
modality converted and the leak check passed, so a failed subject leaves no partial outputs.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from oncoflow.ingest.convert import convert_series
from oncoflow.ingest.deid import (deidentify_sidecar, find_identifiers, is_identifying_key, nifti_header_text,
                                  redact, scrub_nifti_header)
from oncoflow.ingest.errors import IngestError
from oncoflow.ingest.identity import STRICT, IdentityPolicy, check_series_identity
from oncoflow.ingest.modality import MappingResult, map_series_to_modalities
from oncoflow.ingest.series import DicomScan, SeriesInfo, format_skipped, scan_dicom_dir

# Header values that must never reach an output (checked after writing, see _check_no_leaks).
_IDENTIFYING_TAGS = (
    "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "AccessionNumber", "StudyID",
    "InstitutionName", "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
    "OperatorsName", "StationName", "DeviceSerialNumber", "StudyInstanceUID", "SeriesInstanceUID",
    "SOPInstanceUID", "FrameOfReferenceUID",
)
# NIfTI sidecars: keys whose values are identifiers to look for in the outputs (_sidecar_identifiers).
_PERSON_PARTS = ("Patient", "Physician", "Operator", "Telephone", "Address", "Issuer")
_NOT_IDENTIFIERS = frozenset({"PatientSex", "PatientAge", "PatientWeight", "PatientSize", "PatientComments"})
_MIN_IDENTIFIER_LENGTH = 4  # shorter values ("M", "MR1") would match by chance
TSV_COLUMNS = ("series_number", "series_description", "protocol_name", "n_files", "modality", "status", "detail")


def _log(subject: str, message: str) -> None:
    print(f"[ingest {subject}] {message}", file=sys.stderr, flush=True)


def ingest_subject(
    subject: str,
    dicom_dir: Path,
    rules: dict[str, list[str]],
    out_dir: Path,
    *,
    modalities: list[str],
    dcm2niix: str | None = None,
    keep_keys: Iterable[str] = (),
    workers: int = 1,
    policy: IdentityPolicy = STRICT,
) -> dict[str, Path]:
    """Convert the series mapped to each of `modalities`; returns {modality: out_dir/<modality>.nii.gz}.

    `workers`: processes for the header scan (default 1: a pipeline job uses the CPUs it declared);
    `keep_keys`: sidecar keys to keep although identifying, e.g. deid.DEMOGRAPHIC_KEYS;
    `policy`: overrides of the MR/same-patient/same-exam checks (oncoflow.ingest.identity).
    """
    dicom_dir, out_dir = Path(dicom_dir), Path(out_dir)
    try:
        scan = scan_dicom_dir(dicom_dir, workers=workers)
        mapping = map_series_to_modalities(scan.series, rules)
    except IngestError as exc:
        raise exc.for_subject(subject) from exc
    # Every identifying header value of the export: outputs must not hold them, nor may the log
    # lines and error messages below (series descriptions typed by hand often hold a name or MRN).
    identifiers = _dicom_identifiers(scan.series, subject)
    try:
        return _convert_subject(subject, dicom_dir, scan, mapping, out_dir, modalities=modalities,
                                dcm2niix=dcm2niix, keep_keys=keep_keys, policy=policy, identifiers=identifiers)
    except IngestError as exc:  # `from None`: the unredacted original must not reach the log either
        raise IngestError(redact(exc.reason, identifiers), subject=subject) from None


def _convert_subject(subject: str, dicom_dir: Path, scan: DicomScan, mapping: MappingResult, out_dir: Path, *,
                     modalities: list[str], dcm2niix: str | None, keep_keys: Iterable[str],
                     policy: IdentityPolicy, identifiers: dict[str, str]) -> dict[str, Path]:
    def say(message: str) -> None:
        _log(subject, redact(message, identifiers))

    say(f"{scan.n_files_seen} file(s) under {dicom_dir}: {len(scan.series)} series, "
        f"{len(scan.skipped)} skipped")
    if scan.skipped:
        say(format_skipped(scan.skipped, dicom_dir))
    if not scan.series:
        raise IngestError(f"no DICOM image series under {dicom_dir}", subject=subject)
    say("series -> modality:\n" + mapping.format_report())
    chosen = mapping.require(list(modalities), subject)
    check_series_identity(subject, chosen, policy)

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".ingest-") as tmp:
        stage = Path(tmp)
        for modality, series in chosen.items():
            what = f"{modality} from series {series.label()}"
            say(f"converting {what} ({series.n_files} files)")
            nifti, sidecar = stage / f"{modality}.nii.gz", stage / f"{modality}.json"
            try:
                convert_series(series.files, nifti, sidecar, dcm2niix=dcm2niix)
            except IngestError as exc:
                raise IngestError(f"{what}: {exc.reason}", subject=subject) from exc
            _check_image(nifti, subject, what, load_data=False)
            scrub_nifti_header(nifti)
            meta = deidentify_sidecar(json.loads(sidecar.read_text()), keep=keep_keys)
            meta.update(SeriesDescription=series.series_description, oncoflow_subject=subject,
                        oncoflow_modality=modality)
            sidecar.write_text(json.dumps(meta, indent=2) + "\n")
        _write_series_tsv(stage / "series.tsv", _series_rows(mapping, chosen))
        _check_no_leaks(subject, stage, identifiers)
        return _publish(stage, out_dir, list(chosen), subject)


def ingest_nifti(subject: str, nifti_by_modality: dict[str, Path], out_dir: Path) -> dict[str, Path]:
    """Take already converted NIfTI files: check they load, copy as <modality>.nii.gz with the header
    text scrubbed (voxels and geometry untouched), de-identify a sibling .json sidecar if present."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    identifiers: dict[str, str] = {}  # identifying sidecar values -> key, checked like the DICOM path's
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".ingest-") as tmp:
        stage = Path(tmp)
        for modality, src in nifti_by_modality.items():
            src = Path(src)
            what = f"{modality} from {src}"
            _log(subject, f"copying {what}")
            if not src.is_file():
                raise IngestError(f"{what}: file not found", subject=subject)
            _check_image(src, subject, what, load_data=True)
            try:
                scrub_nifti_header(src, stage / f"{modality}.nii.gz")
            except (OSError, ValueError) as exc:
                raise IngestError(f"{what}: cannot copy ({exc})", subject=subject) from exc
            source_json = src.with_name(src.name.split(".nii")[0] + ".json")
            meta = json.loads(source_json.read_text()) if source_json.is_file() else {}
            identifiers.update(_sidecar_identifiers(meta, subject))
            meta = deidentify_sidecar(meta)
            meta.update(SeriesDescription=meta.get("SeriesDescription"), oncoflow_subject=subject,
                        oncoflow_modality=modality, oncoflow_source="nifti")
            (stage / f"{modality}.json").write_text(json.dumps(meta, indent=2) + "\n")
            rows.append({"series_number": meta.get("SeriesNumber", ""), "series_description": meta["SeriesDescription"] or "",
                         "protocol_name": meta.get("ProtocolName", ""), "n_files": 1, "modality": modality,
                         "status": "converted", "detail": "NIfTI input"})
        _write_series_tsv(stage / "series.tsv", rows)
        try:
            _check_no_leaks(subject, stage, identifiers)
        except IngestError as exc:
            raise IngestError(f"{exc.reason} (identifying values come from the sidecars beside the NIfTI "
                              "files; edit SeriesDescription/ProtocolName there)", subject=subject) from None
        return _publish(stage, out_dir, list(nifti_by_modality), subject)


def find_nifti_files(subject: str, folder: Path, modalities: list[str]) -> dict[str, Path]:
    """``folder/<modality>.nii.gz`` (or ``.nii``) for every modality; an IngestError naming the
    subject, every missing file and what the folder holds otherwise. Other files are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(f"NIfTI folder not found: {folder}", subject=subject)
    found: dict[str, Path] = {}
    problems = []
    for modality in modalities:
        candidates = [folder / f"{modality}{ext}" for ext in (".nii.gz", ".nii")]
        present = [c for c in candidates if c.is_file()]
        if len(present) > 1:
            problems.append(f"both {present[0].name} and {present[1].name} for modality {modality!r}")
        elif not present:
            problems.append(f"modality {modality!r} is missing: no {candidates[0]}")
        else:
            found[modality] = present[0]
    if problems:
        held = sorted(p.name for p in folder.iterdir() if p.name.endswith((".nii", ".nii.gz")))
        raise IngestError("; ".join(problems) + f" (the folder holds {', '.join(held) or 'no NIfTI file'}; "
                          f"expected <modality>.nii.gz for {', '.join(modalities)})", subject=subject)
    return found


def ingest_nifti_folder(subject: str, folder: Path, out_dir: Path, *, modalities: list[str]) -> dict[str, Path]:
    """Conversion-free ingest: ``folder/<modality>.nii.gz`` -> out_dir, as ``ingest_nifti``."""
    files = find_nifti_files(subject, folder, modalities)
    _log(subject, f"NIfTI folder {folder}: " + ", ".join(f"{m} <- {p.name}" for m, p in files.items()))
    return ingest_nifti(subject, files, out_dir)


def _check_image(path: Path, subject: str, what: str, *, load_data: bool) -> None:
    """One 3D volume with a usable affine (and, if asked, voxel data that reads to the end)."""
    try:
        img = nib.load(path)
        if load_data:
            np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel/gzip raise many types for corrupt files
        raise IngestError(f"{what}: cannot load NIfTI {path} ({type(exc).__name__}: {exc})", subject=subject) from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise IngestError(f"{what}: not a single-file NIfTI image ({path})", subject=subject)
    if img.get_data_dtype().kind in "iu" and img.get_data_dtype().itemsize == 8:
        raise IngestError(f"{what}: {path} stores 64-bit integer voxels ({img.get_data_dtype()}), which ITK "
                          "cannot read; save it as int16, int32 or float32 (e.g. nibabel: "
                          "img.set_data_dtype('int32'))", subject=subject)
    if len(img.shape) != 3:
        raise IngestError(f"{what}: expected one 3D volume, got shape {img.shape} "
                          f"(multi-volume/4D series such as DWI or fMRI are not structural images)", subject=subject)
    if not np.isfinite(img.affine).all() or abs(np.linalg.det(img.affine[:3, :3])) < 1e-6:
        raise IngestError(f"{what}: invalid affine in {path}", subject=subject)


def _dicom_identifiers(series: Iterable[SeriesInfo], subject: str) -> dict[str, str]:
    """Identifying header values of the converted series (first file of each) -> their keyword."""
    values: dict[str, str] = {}
    for s in series:
        if not s.files:
            continue
        ds = pydicom.dcmread(s.files[0], stop_before_pixels=True, force=True)
        for keyword in _IDENTIFYING_TAGS:
            value = ds.get(keyword)
            items = value if isinstance(value, pydicom.multival.MultiValue) else [value]
            values.update((str(v).strip(), keyword) for v in items if v is not None)
    if any(v.lower() == subject.lower() for v in values):
        _log(subject, "note: the subject ID equals a DICOM identifier (PatientID/Name...); it is "
                      "written to the outputs as oncoflow_subject because it was chosen as the subject ID")
    return {v: k for v, k in values.items() if len(v) >= _MIN_IDENTIFIER_LENGTH and v.lower() != subject.lower()}


def _sidecar_identifiers(meta: dict, subject: str) -> dict[str, str]:
    """Values of a NIfTI input's sidecar keys that name a person or an ID (the DICOM path's tags, and
    patient, physician, operator, phone, address and issuer keys). Free-text descriptions that deid
    also drops (ProcedureStepDescription...) often repeat the series description: not identifiers."""
    values = {}
    for key, value in meta.items():
        if key in _IDENTIFYING_TAGS or (is_identifying_key(key) and key not in _NOT_IDENTIFIERS
                                        and any(part in key for part in _PERSON_PARTS)):
            values.update((v.strip(), key) for v in _json_values(value))
    return {v: k for v, k in values.items()
            if len(v) >= _MIN_IDENTIFIER_LENGTH and v.lower() != subject.lower() and not _is_number(v)}


def _is_number(text: str) -> bool:
    """Dates and times are dropped from sidecars but as bare numbers they would match voxel sizes."""
    try:
        float(text)
    except ValueError:
        return False
    return "." in text


def _json_values(obj) -> list[str]:
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _json_values(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in _json_values(v)]
    return [str(obj)]


def _check_no_leaks(subject: str, stage: Path, identifiers: dict[str, str]) -> None:
    """Refuse outputs whose JSON values, NIfTI header text or series.tsv contain a DICOM identifier."""
    leaks = []
    for path in sorted(stage.iterdir()):
        if path.name.endswith(".json"):
            text = "\n".join(_json_values(json.loads(path.read_text())))
        elif path.name.endswith((".nii", ".nii.gz")):
            text = nifti_header_text(path)
        else:
            text = path.read_text()
        tags = sorted({identifiers[v] for v in find_identifiers(text, list(identifiers))})
        if tags:
            leaks.append(f"{', '.join(tags)} in {path.name}")
    if leaks:  # name the tags, not the values: this message ends up in logs
        raise IngestError(f"de-identification check failed: the value of {'; '.join(leaks)}; "
                          f"no output was written", subject=subject)


def _series_rows(mapping: MappingResult, converted: dict[str, SeriesInfo]) -> list[dict]:
    rows = []
    for s in mapping.series:
        modality, status, detail = mapping.status(s)
        if status == "selected":
            status = "converted" if converted.get(modality) is s else "selected, not requested"
        rows.append({"series_number": "" if s.series_number is None else s.series_number,
                     "series_description": s.series_description, "protocol_name": s.protocol_name,
                     "n_files": s.n_files, "modality": modality, "status": status, "detail": detail})
    return rows


def _write_series_tsv(path: Path, rows: list[dict]) -> None:
    """Plain TSV, no quoting: tabs and newlines inside values become spaces."""
    clean = lambda v: " ".join(str(v).split())  # noqa: E731
    lines = ["\t".join(TSV_COLUMNS)] + ["\t".join(clean(r[c]) for c in TSV_COLUMNS) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _publish(stage: Path, out_dir: Path, modalities: list[str], subject: str) -> dict[str, Path]:
    """Move staged outputs into out_dir (same filesystem: atomic renames)."""
    for path in stage.iterdir():
        path.replace(out_dir / path.name)
    outputs = {m: out_dir / f"{m}.nii.gz" for m in modalities}
    _log(subject, "wrote " + ", ".join(p.name for p in outputs.values()) + f", series.tsv to {out_dir}")
    return outputs
