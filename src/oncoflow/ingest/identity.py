"""Are the series chosen for a subject MR images of one patient, from one exam?

A series is chosen by its description alone, so a CT named "AX T1 POST GAD" or another patient's
FLAIR copied into the subject's folder would otherwise be converted and trained on. Messages name
the series and the DICOM attribute, never its value (they end up in logs; values identify people).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pydicom

from oncoflow.ingest.errors import IngestError
from oncoflow.ingest.series import SeriesInfo

IMAGING_MODALITY = "MR"


@dataclass(frozen=True)
class IdentityPolicy:
    """Documented overrides (config ``ingest``): ``allow_multiple_studies`` accepts series of one
    patient from several exams (StudyInstanceUID); ``allow_patient_id_as_subject`` accepts a
    subject ID equal to the exam's PatientID (an MRN then names every output file)."""

    allow_multiple_studies: bool = False
    allow_patient_id_as_subject: bool = False

    @classmethod
    def from_config(cls, ingest: Mapping[str, object] | None) -> IdentityPolicy:
        ingest = ingest or {}
        return cls(bool(ingest.get("allow_multiple_studies", False)),
                   bool(ingest.get("allow_patient_id_as_subject", False)))


def _header(series: SeriesInfo) -> pydicom.Dataset:
    return pydicom.dcmread(series.files[0], stop_before_pixels=True, force=True,
                           specific_tags=["Modality", "PatientID", "StudyInstanceUID"])


STRICT = IdentityPolicy()


def check_series_identity(subject: str, chosen: Mapping[str, SeriesInfo],
                          policy: IdentityPolicy = STRICT) -> None:
    """Every chosen series is MR, all share PatientID and (unless allowed) StudyInstanceUID, and the
    subject ID is not the PatientID (unless allowed); an IngestError naming the series otherwise."""
    headers = {m: _header(s) for m, s in chosen.items()}
    for modality, ds in headers.items():
        kind = str(ds.get("Modality", "") or "").strip()
        if kind and kind != IMAGING_MODALITY:
            raise IngestError(
                f"{modality}: series {chosen[modality].label()} has DICOM Modality {kind!r}, not MR, although "
                f"its description matched ingest.modalities.{modality}; remove that series from the subject's "
                "folder (or tighten the pattern)", subject=subject)
    for attribute, allowed, hint in (
        ("PatientID", False, "another patient's series is in this subject's folder: remove it"),
        ("StudyInstanceUID", policy.allow_multiple_studies,
         "series from different exams; if that is intended (e.g. a FLAIR from an earlier visit), set "
         "ingest.allow_multiple_studies: true"),
    ):
        groups: dict[str, list[str]] = {}
        for modality, ds in headers.items():
            groups.setdefault(str(ds.get(attribute, "") or "").strip(), []).append(modality)
        groups.pop("", None)
        if len(groups) > 1 and not allowed:
            parts = "; ".join(", ".join(f"{m} (series {chosen[m].label()})" for m in ms) for ms in groups.values())
            raise IngestError(f"the series chosen differ in DICOM {attribute} ({len(groups)} values: {parts}): "
                              f"{hint}", subject=subject)
    if not policy.allow_patient_id_as_subject:
        for ds in headers.values():
            if str(ds.get("PatientID", "") or "").strip().lower() == subject.lower():
                raise IngestError(
                    "sample sheet column 'subject': the subject ID equals the exam's DICOM PatientID, which "
                    "would name every output file; use a pseudonymous ID (or set "
                    "ingest.allow_patient_id_as_subject: true if that ID is not identifying)", subject=subject)
