"""Errors and warnings raised by ingest; messages name the subject (when known) and the file/series."""

from __future__ import annotations


class IngestError(Exception):
    """A subject's DICOM/NIfTI input could not be ingested."""

    def __init__(self, message: str, *, subject: str | None = None) -> None:
        super().__init__(f"[{subject}] {message}" if subject else message)
        self.subject = subject
        self.reason = message

    def for_subject(self, subject: str) -> IngestError:
        """The same error, prefixed with the subject ID (lower layers do not know it)."""
        return self if self.subject else IngestError(self.reason, subject=subject)


class IngestWarning(UserWarning):
    """Something was skipped (e.g. a non-DICOM file in the export)."""
