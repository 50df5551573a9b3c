"""Subject IDs name every output file and folder, every log and every job: the checks on them that
must run while the sample sheet is read, before a job or a log file exists.

- An ID shaped like a hospital identifier (an MRN-like prefix and digits, a long run of digits only,
  a social-security or NHS number) or equal to the DICOM PatientID / PatientName of the subject's
  own series is refused. The message names the sheet line and the reason, never the value: it
  would otherwise reach Snakemake's own log. ``ingest.allow_patient_id_as_subject: true`` accepts
  such IDs where they are not identifying.
- Two IDs that differ only by case are refused: their folders are one folder on macOS and
  Windows file systems.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

#: (pattern, what it looks like): IDs matching one are refused unless allowed.
IDENTIFIER_SHAPES = (
    (re.compile(r"^(?:mrn|pid|patid|patientid|hn|urn|nhs|emr|ehr)[-_]?\d{5,}$", re.IGNORECASE),
     "a medical record number (a prefix such as MRN followed by digits)"),
    (re.compile(r"^\d{6,}$"), "a hospital number (six or more digits and nothing else)"),
    (re.compile(r"^\d{3}[-_]\d{2}[-_]\d{4}$"), "a social security number"),
    (re.compile(r"^\d{3}[-_]\d{3}[-_]\d{4}$"), "an NHS or telephone number"),
)
#: DICOM attributes an ID must not equal (compared without case, spaces or punctuation).
DICOM_IDENTIFIERS = ("PatientID", "PatientName")
_MIN_MATCH = 3  # shorter values ("M", "A1") match by chance


def identifier_shape(subject: str) -> str | None:
    """What ``subject`` looks like when it has the shape of a hospital identifier, else None."""
    for pattern, what in IDENTIFIER_SHAPES:
        if pattern.match(subject):
            return what
    return None


def _letters_and_digits(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def first_file(folder: Path) -> Path | None:
    """The first regular file of ``folder`` in sorted walk order (hidden files skipped)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            return Path(root) / name
    return None


def dicom_identifier_match(subject: str, folder: Path) -> str | None:
    """The DICOM attribute (PatientID, PatientName) of the first file of the subject's folder that
    equals ``subject``, or None (also when that file is not DICOM: ingest judges it later)."""
    import pydicom

    path = first_file(folder)
    if path is None:
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=list(DICOM_IDENTIFIERS))
    except Exception:  # noqa: BLE001 - not DICOM, unreadable: ingest reports it with the series
        return None
    key = _letters_and_digits(subject)
    for attribute in DICOM_IDENTIFIERS:
        value = _letters_and_digits(str(ds.get(attribute, "") or ""))
        if len(value) >= _MIN_MATCH and value == key:
            return attribute
    return None


def identifier_problem(subject: str, dicom: str) -> str | None:
    """Why ``subject`` may not name files (its shape, or a DICOM identifier of its own series in the
    folder ``dicom``, when given), without repeating the ID; None when it may."""
    shape = identifier_shape(subject)
    if shape is None and dicom:
        attribute = dicom_identifier_match(subject, Path(dicom))
        shape = f"the DICOM {attribute} of its own series" if attribute else None
    if shape is None:
        return None
    return (f"the subject ID looks like {shape} and would name every output file and log (its value is not "
            "repeated here); use a pseudonymous ID and keep the key elsewhere, or set "
            "ingest.allow_patient_id_as_subject: true if such IDs are not identifying")


def case_collisions(subjects: pd.Series) -> list[tuple[str, str]]:
    """Pairs of IDs (first seen, later) equal but for case."""
    seen: dict[str, str] = {}
    pairs = []
    for subject in subjects:
        key = subject.lower()
        if key in seen and seen[key] != subject:
            pairs.append((seen[key], subject))
        seen.setdefault(key, subject)
    return pairs
