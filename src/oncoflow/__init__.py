"""oncoflow: reproducible MRI tumor-status prediction, from DICOM to paper-ready tables."""

__version__ = "0.1.0"
