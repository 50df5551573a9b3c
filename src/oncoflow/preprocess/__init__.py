"""Per-subject preprocessing: N4 bias correction, co-registration (or resampling of pre-registered
images), the tumor mask onto the reference grid, brain extraction (or a foreground mask), and QC."""
