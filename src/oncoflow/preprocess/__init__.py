"""Per-subject preprocessing: N4 bias correction, co-registration, brain extraction."""
