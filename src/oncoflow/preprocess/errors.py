"""Errors raised by preprocessing, always naming the subject and file."""


class PreprocessError(RuntimeError):
    """A subject's image could not be processed; the message names subject and file."""

    def __init__(self, subject: str, path: object, reason: str) -> None:
        super().__init__(f"[{subject}] {path}: {reason}")
        self.subject = subject
        self.path = path
        self.reason = reason
