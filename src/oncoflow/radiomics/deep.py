"""Frozen deep features: a pretrained brain-extraction encoder's feature maps pooled inside the
tumor, per modality, as a features table for the radiomics models (radiomics.variants hdbet /
deepbet; the ``radiomics_hdbet`` model is then the LASSO rad-score of these features, fitted per
fold on training patients only, like any radiomics variant).

Each modality of a subject's crop is prepared as the network expects it
(oncoflow.models.catalog.INPUT_PREPARATION: its spacing, axis order and intensity normalisation, a
crop.depth x crop.size x crop.size window centred on the tumor), passed once through the frozen
encoder (eval mode, no gradient), and its deepest feature map (HD-BET: 336 channels at 1/16,
deepbet: 128 at 1/32) averaged with weights given by the tumor's share of each cell. Nothing is
fitted here: every subject's features depend on that subject's crop alone, so extracting them
for the whole cohort at once cannot leak between folds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from oncoflow.models.catalog import DEEP_VARIANTS, INPUT_PREPARATION

POOLING = "tumor-weighted mean of the encoder's deepest feature map"


def deep_settings(variant: str, modalities: list[str], crop: dict[str, Any]) -> dict[str, Any]:
    """What shapes the features (settings.json; the bundle compares it at predict time)."""
    architecture = DEEP_VARIANTS[variant]
    return {"kind": "deep", "architecture": architecture, "preparation": INPUT_PREPARATION[architecture],
            "modalities": list(modalities), "grid": [crop["depth"], crop["size"], crop["size"]],
            "pooling": POOLING}


def extract_deep_features(crops: dict[str, Path], variant: str, modalities: list[str], depth: int,
                          threads: int = 1) -> pd.DataFrame:
    """One row per subject: ``<modality>_<network>_<k>`` for each encoder channel k."""
    import torch

    from oncoflow.models.brainnets import build_encoder, masked_pool
    from oncoflow.train.data import build_samples
    from oncoflow.train.kernels import use_cpu_kernels

    if variant not in DEEP_VARIANTS:
        raise ValueError(f"unknown deep-feature variant {variant!r}; choose from {', '.join(DEEP_VARIANTS)}")
    torch.set_num_threads(threads)
    use_cpu_kernels()
    architecture = DEEP_VARIANTS[variant]
    encoder = build_encoder(architecture, variant).eval()
    rows = []
    start = time.perf_counter()
    for i, (subject, path) in enumerate(crops.items()):
        samples = build_samples({subject: path}, modalities, dims=3, slices=0, depth=depth, masks=True,
                                preparation=INPUT_PREPARATION[architecture])
        x = torch.from_numpy(samples.x[0]).unsqueeze(1)  # (modalities, 1, *grid): one pass each
        mask = torch.from_numpy(samples.mask).expand(len(modalities), -1, -1, -1, -1)
        with torch.no_grad():
            maps = encoder(x)
            if maps.shape[2:].numel() < 2:
                raise ValueError(f"{subject}: a {tuple(x.shape[2:])} window leaves the {variant} encoder a single "
                                 "cell; use a larger crop.size or crop.depth")
            pooled = masked_pool(maps.unsqueeze(1), mask)[:, 0]  # (modalities, channels)
        row: dict[str, Any] = {"subject": subject}
        for m, values in zip(modalities, pooled.numpy()):
            row.update({f"{m}_{variant}_{k:03d}": float(v) for k, v in enumerate(values)})
        rows.append(row)
        if (i + 1) % 10 == 0 or i + 1 == len(crops):
            print(f"{variant} features: {i + 1}/{len(crops)} subjects ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)
    return pd.DataFrame(rows)
