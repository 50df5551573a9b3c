"""Which CPU kernels training runs on: machine-native (default) or bit-reproducible across CPUs.

PyTorch picks its CPU kernels by the processor: oneDNN (mkldnn) convolutions and MKL's matrix
products run AVX2 or AVX-512 code with different summation orders, so the same commit, config and
seed gave different weights, predictions and AUCs on two machines (benchmarks/reproducibility.md).
ONCOFLOW_CPU_KERNELS=reproducible turns oneDNN off for CPU training (convolutions run on ATen's own
kernels) and holds MKL to its AVX2 code path on every CPU (MKL_CBWR=AVX2, set by
oncoflow.runtime.start_job before torch loads): measured bit-identical as an AVX2 or AVX-512 CPU
and with 1 or 2 threads, at about 3x the time per training step, so it is not the default
(``native``). Recorded in provenance.json. GPU training is unaffected.
"""

from __future__ import annotations

import os

ENV = "ONCOFLOW_CPU_KERNELS"
MODES = ("native", "reproducible")
# MKL's conditional numerical reproducibility: the same code path on every CPU with AVX2.
MKL_PIN = {"MKL_CBWR": "AVX2"}


def cpu_kernels() -> str:
    """The mode the environment asks for (default ``native``)."""
    mode = os.environ.get(ENV, "native") or "native"
    if mode not in MODES:
        raise ValueError(f"environment variable {ENV}={mode!r}: choose one of {', '.join(MODES)}")
    return mode


def pin_cpu_libraries() -> None:
    """In ``reproducible`` mode, hold MKL to one code path; call before torch is imported."""
    if cpu_kernels() == "reproducible":
        os.environ.update(MKL_PIN)


def use_cpu_kernels() -> str:
    """Apply :func:`cpu_kernels` to this process (before training); returns the mode."""
    import torch

    mode = cpu_kernels()
    torch.backends.mkldnn.enabled = mode == "native"
    return mode
