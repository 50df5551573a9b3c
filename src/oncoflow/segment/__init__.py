"""Tumor segmentation learned from the study's own manual masks (config ``segment``).

No offline brain-tumor segmenter can be installed without downloading weights at run time, so the
workflow fits one per outer fold, like everything else it fits: a MONAI 2D U-Net on axial slices
of the skull-stripped, co-registered images (the brain box resampled in-plane to a small square,
so it trains on CPUs), on that fold's training and inner-validation patients' manual masks only.
Its predicted masks are cross-fitted: a patient's mask always comes from the segmenter of a fold
in which that patient is a test (or external) patient (:mod:`oncoflow.segment.crossfit`).

- :mod:`~oncoflow.segment.settings`: the validated ``segment`` config.
- :mod:`~oncoflow.segment.slices`: volume <-> network slices (and back onto the reference grid).
- :mod:`~oncoflow.segment.segmenter`: training and prediction.
- :mod:`~oncoflow.segment.scores`: Dice, HD95, volume difference, detection against manual masks.
- :mod:`~oncoflow.segment.crossfit`: which patients train a fold's segmenter, which fold predicts whom.
- :mod:`~oncoflow.segment.plausibility`: whether a predicted mask may be cropped (empty, volume, brain).
"""
