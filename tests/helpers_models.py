"""Helpers for the model tests: a small, seeded input batch of the shape an architecture takes."""

from __future__ import annotations

import torch

from oncoflow.models.catalog import ENCODERS_3D
from oncoflow.models.zoo import spatial_dims


def tiny_input(architecture: str, channels: int = 2) -> torch.Tensor:
    """Two seeded samples: (2, channels, 64, 64) for a 2D architecture, (2, channels, 16, 32, 32)
    for a 3D one (the smallest that every architecture of the zoo takes), (2, channels, 16, 64, 64)
    for a brain-extraction encoder (deepbet's downsamples by 32)."""
    shape = (2, channels, 64, 64) if spatial_dims(architecture) == 2 else (2, channels, 16, 32, 32)
    if architecture in ENCODERS_3D:
        shape = (2, channels, 16, 64, 64)
    return torch.randn(shape, generator=torch.Generator().manual_seed(1))
