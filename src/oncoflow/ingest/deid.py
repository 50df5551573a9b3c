"""De-identification of dcm2niix outputs: sidecar keys, NIfTI header text, and a leak check."""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import nibabel as nib

from oncoflow.atomic import atomic_write

# Sidecar keys that identify the patient, the exam or the site. PatientPosition (HFS...) is kept.
IDENTIFYING_KEYS = frozenset({
    "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientWeight", "PatientSize", "PatientComments", "AccessionNumber", "StudyID",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "DeviceSerialNumber", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "RequestingPhysician", "StudyDescription", "ProcedureStepDescription",
    "RequestedProcedureDescription", "PerformedProcedureStepDescription", "ImageComments",
    "AcquisitionDateTime", "AcquisitionTime", "ContentTime", "SeriesTime", "StudyTime",
})
DEMOGRAPHIC_KEYS = ("PatientSex", "PatientAge")  # may be kept on request: deidentify_sidecar(keep=...)
_NIFTI_TEXT_FIELDS = ("descrip", "aux_file", "db_name", "intent_name")


# Parts of a key that mark a person, a contact or an issuer of IDs (PatientAddress, IssuerOfPatientID,
# PatientTelephoneNumbers, PhysiciansOfRecord, NameOfPhysiciansReadingStudy, OtherPatientNames, ...).
_IDENTIFYING_PARTS = ("Patient", "Physician", "Operator", "Telephone", "Address", "Issuer", "Institution",
                      "Accession", "Requesting", "Performing", "Referring")
_KEPT_PATIENT_KEYS = frozenset({"PatientPosition"})  # HFS...: the scanner's geometry, not a person


def is_identifying_key(key: str) -> bool:
    """Listed keys, any UID, any date or birth time, and any key naming a patient, physician,
    operator, telephone, address or ID issuer (PatientPosition excepted)."""
    if key in _KEPT_PATIENT_KEYS:
        return False
    return (key in IDENTIFYING_KEYS or "UID" in key or key.endswith(("Date", "DateTime"))
            or any(part in key for part in _IDENTIFYING_PARTS))


def redact(text: str, identifiers: dict[str, str]) -> str:
    """``text`` with every identifier (as find_identifiers matches it) replaced by ``<its keyword>``:
    for log lines and error messages, which must not hold what the outputs may not."""
    for ident in sorted(identifiers, key=len, reverse=True):
        value = ident.strip()
        if not value:
            continue
        for variant in sorted({value, value.replace("^", " ").strip(), value.replace("^", ", ").strip()},
                              key=len, reverse=True):
            pattern = re.escape(variant)
            if variant.isdigit():
                pattern = rf"(?<!\d){pattern}(?!\d)"
            text = re.sub(pattern, f"<{identifiers[ident]}>", text, flags=re.IGNORECASE)
    return text


def deidentify_sidecar(meta: dict, *, keep: Iterable[str] = ()) -> dict:
    """A copy of a BIDS sidecar without identifying keys; `keep` may retain e.g. DEMOGRAPHIC_KEYS."""
    keep = set(keep)
    return {k: v for k, v in meta.items() if k in keep or not is_identifying_key(k)}


def find_identifiers(text: str, identifiers: list[str]) -> list[str]:
    """The identifiers that occur in `text` (case-insensitive; '^' in person names may read as a space).

    Numbers are matched as whole numbers only, so an ID '1073' is not found inside '10737'.
    """
    lowered = text.lower()
    found = []
    for ident in identifiers:
        ident = ident.strip()
        variants = {ident, ident.replace("^", " ").strip(), ident.replace("^", ", ").strip()}
        if ident and any(_contains(lowered, v.lower()) for v in variants):
            found.append(ident)
    return found


def _contains(text: str, value: str) -> bool:
    if not value.isdigit():
        return value in text
    start = text.find(value)
    while start != -1:  # whole numbers only
        end = start + len(value)
        if (start == 0 or not text[start - 1].isdigit()) and (end == len(text) or not text[end].isdigit()):
            return True
        start = text.find(value, start + 1)
    return False


def scrub_nifti_header(src: Path, dst: Path | None = None) -> None:
    """Blank the free-text header fields and drop header extensions; voxels and geometry are copied
    byte for byte. Writes `dst` (default: rewrite `src`); gzip when the name ends in .gz."""
    src = Path(src)
    dst = Path(dst) if dst is not None else src
    img = nib.load(src)
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ValueError(f"not a single-file NIfTI image: {src}")
    hdr = img.header.copy()
    for name in _NIFTI_TEXT_FIELDS:
        if name in hdr.keys():
            hdr[name] = b""
    hdr.extensions.clear()
    old_offset = int(img.dataobj.offset)  # img.header["vox_offset"] is reset to 0 by nibabel on load
    hdr["vox_offset"] = hdr.single_vox_offset
    with atomic_write(dst) as tmp, nib.openers.ImageOpener(src) as fin, open(tmp, "wb") as raw:
        # mtime=0 and no file name in the gzip header: identical inputs give identical bytes.
        fout = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if dst.name.endswith(".gz") else raw
        with fout:
            hdr.write_to(fout)
            fin.seek(old_offset)
            shutil.copyfileobj(fin, fout, 1 << 20)


def nifti_header_text(path: Path) -> str:
    """The NIfTI header and extensions (uncompressed) as text, for leak checks."""
    img = nib.load(path)
    with nib.openers.ImageOpener(path) as f:
        return f.read(int(img.dataobj.offset)).decode("latin-1")
