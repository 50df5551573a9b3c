"""Start of every workflow script: log file and thread limits, before heavy imports."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from oncoflow.train.kernels import pin_cpu_libraries  # torch-free: it only sets environment variables

THREAD_VARIABLES = ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS")


def start_job(snakemake: Any) -> Any:
    """Send stderr to the rule's log and hold ITK/OpenMP/BLAS to the rule's threads, so parallel
    jobs do not oversubscribe the cores. Call before importing ants, torch or numpy-heavy code."""
    if snakemake.log:
        sys.stderr = open(snakemake.log[0], "w", buffering=1)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(snakemake.threads)
    pin_cpu_libraries()
    return snakemake


def export_pythonpath(src: Path) -> None:
    """Put the checkout's ``src`` first on PYTHONPATH, so that scripts import this package, also
    inside per-rule conda envs (called once by workflow/rules/common.smk)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))
