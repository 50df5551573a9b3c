"""N4 bias-field correction inside a head mask (ANTsPy)."""

from __future__ import annotations

import ants

from oncoflow.preprocess.masks import head_mask


def correct_bias(
    img: ants.ANTsImage,
    *,
    shrink_factor: int = 4,
    iterations: tuple[int, ...] = (50, 50, 30),
    convergence_tol: float = 1e-6,
) -> ants.ANTsImage:
    """N4 restricted to the head, so background noise does not drive the bias fit.

    Shrinking by 4 keeps the fit ~1 s on a clinical volume while the smooth field is unaffected.
    """
    mask = head_mask(img)
    corrected = ants.n4_bias_field_correction(
        img,
        mask=mask,
        shrink_factor=shrink_factor,
        convergence={"iters": list(iterations), "tol": convergence_tol},
    )
    return corrected * mask  # zero outside the head, as scanners do after reconstruction
