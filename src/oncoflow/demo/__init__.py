"""Synthetic, deterministic "clinical" demo cohort (DICOM exams + tumor masks + sample sheet)."""

from .cohort import (DEMO_SUBJECTS, PROTOCOLS, SAMPLE_COLUMNS, SeriesProtocol, SimulatedSubject, make_demo_cohort,
                     simulate_subject)
from .dicom_writer import dcm2niix_orientation, write_dicom_series
from .studies import STUDY_SHAPES, StudyShape

__all__ = [
    "DEMO_SUBJECTS",
    "PROTOCOLS",
    "SAMPLE_COLUMNS",
    "STUDY_SHAPES",
    "SeriesProtocol",
    "StudyShape",
    "SimulatedSubject",
    "dcm2niix_orientation",
    "make_demo_cohort",
    "simulate_subject",
    "write_dicom_series",
]
