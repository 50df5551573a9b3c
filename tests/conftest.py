"""Shared fixtures: repository paths, the optional real data in ../shared, a tiny demo cohort and
one finished workflow run on it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Shared by the tests that read one finished run; made once per test process.
FINISHED_RUN = ("finished_run", "tiny_cohort")
# A file of nodeid -> group that the xdist workers write at collection and the controller's scheduler
# reads: pytest-xdist 3.8's own --dist loadgroup no longer groups under pytest 9.2 (it renames
# ``item._nodeid``, which pytest 9.2's nodeid no longer reads).
GROUPS = "ONCOFLOW_TEST_GROUPS"
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


def test_group(item: pytest.Item) -> str | None:
    """The tests that read the finished run form one group, so one worker makes it; the tests of a
    file that share a module-scoped fixture form another, so it is made once; None: any worker."""
    if any(name in item.fixturenames for name in FINISHED_RUN):
        return "finished_run"
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures and any(defs and defs[-1].scope == "module" for defs in fixtures.name2fixturedefs.values()):
        return item.nodeid.split("::")[0]
    return None


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("dist", "no") != "no" and GROUPS not in os.environ:  # the xdist controller
        handle, path = tempfile.mkstemp(prefix="oncoflow-test-groups-", suffix=".json")
        os.close(handle)
        os.environ[GROUPS] = path  # the workers it starts inherit it


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.getoption("dist", "no") != "no" and os.environ.get(GROUPS):
        Path(os.environ.pop(GROUPS)).unlink(missing_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The end-to-end runs (``slow``) first, after the finished run's group, so that the last
    minutes are not one long run on one worker while the other idles; under xdist each worker
    writes the groups for the controller."""
    items.sort(key=lambda item: (test_group(item) != "finished_run", item.get_closest_marker("slow") is None))
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(GROUPS):
        groups = {item.nodeid: group for item in items if (group := test_group(item))}
        tmp = Path(f"{os.environ[GROUPS]}.{os.environ['PYTEST_XDIST_WORKER']}")
        tmp.write_text(json.dumps(groups))
        tmp.replace(os.environ[GROUPS])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadgroup`` (``make test``): xdist's scope scheduler, one scope per group of
    :func:`test_group` (a test without one is its own), handed out in collection order."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # keep the order of pytest_collection_modifyitems

    class FixtureGroups(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                text = Path(os.environ[GROUPS]).read_text()
                self.groups = json.loads(text) if text else {}
            return self.groups.get(nodeid, nodeid)

    return FixtureGroups(config, log)
