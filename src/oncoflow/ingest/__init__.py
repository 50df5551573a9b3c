"""oncoflow.ingest: one subject's DICOM export -> one de-identified NIfTI (+ JSON sidecar) per modality."""

from oncoflow.ingest.convert import convert_series, find_dcm2niix
from oncoflow.ingest.deid import deidentify_sidecar, find_identifiers, scrub_nifti_header
from oncoflow.ingest.errors import IngestError, IngestWarning
from oncoflow.ingest.modality import Ambiguity, MappingResult, RuleMatch, map_series_to_modalities
from oncoflow.ingest.series import DicomScan, SeriesInfo, SkippedFile, find_series, scan_dicom_dir
from oncoflow.ingest.subject import find_nifti_files, ingest_nifti, ingest_nifti_folder, ingest_subject

__all__ = [
    "Ambiguity", "DicomScan", "IngestError", "IngestWarning", "MappingResult", "RuleMatch", "SeriesInfo",
    "SkippedFile", "convert_series", "deidentify_sidecar", "find_dcm2niix", "find_identifiers",
    "find_nifti_files", "find_series", "ingest_nifti", "ingest_nifti_folder", "ingest_subject",
    "map_series_to_modalities", "scan_dicom_dir", "scrub_nifti_header",
]
