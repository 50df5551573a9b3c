"""Shared fixtures: repository paths, the optional real data in ../shared, a tiny demo cohort and
one finished workflow run on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: a user's checkout does not have it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only in the development checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14 subjects (2 external) at half resolution; returns the sample sheet."""
    from oncoflow.demo import make_demo_cohort

    out = tmp_path_factory.mktemp("tiny_demo")
    return make_demo_cohort(out, 14, seed=3, voxel_scale=2.0, external_fraction=0.15)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_cohort: Path) -> Path:
    """The whole workflow, run once on the tiny cohort with ``tiny_config()``; shared by the
    end-to-end, reproducibility and SLURM tests. A test that changes its config or outputs puts
    them back (reruns on CPU reproduce the same bytes), so the next one finds a finished run."""
    from workflow_helpers import run_snakemake, tiny_config, write_config

    workdir = tmp_path_factory.mktemp("workflow")
    shutil.copytree(tiny_cohort.parent, workdir / "data" / "demo")
    write_config(workdir, tiny_config())
    result = run_snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir
