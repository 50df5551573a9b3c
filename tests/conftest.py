"""Shared fixtures: repository paths, the optional real data in ../shared, a tiny demo cohort and
one finished workflow run on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Shared by the tests that read one finished run; made once per test process.
FINISHED_RUN = ("finished_run", "tiny_cohort")
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """For pytest-xdist (``make test`` runs two workers with ``--dist loadgroup``): the tests that
    read the finished run form one group, so one worker makes it; a file whose tests share a
    module-scoped fixture stays on one worker, so the fixture is made once; every other test goes
    to whichever worker is free. The end-to-end runs (``slow``) are queued first, so that the last
    minutes are not one long run on one worker while the other idles."""
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        defs = fixtures.name2fixturedefs if fixtures else {}
        if any(name in item.fixturenames for name in FINISHED_RUN):
            item.add_marker(pytest.mark.xdist_group("finished_run"))
        elif any(d[-1].scope == "module" for d in defs.values() if d):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items.sort(key=lambda item: (not any(name in item.fixturenames for name in FINISHED_RUN),
                                 item.get_closest_marker("slow") is None))
