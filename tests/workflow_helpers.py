"""Run the real workflow (snakemake CLI) in a scratch directory laid out like a user's checkout."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def base_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def tiny_config() -> dict[str, Any]:
    """The demo config cut down for tests: 3 models x 3 folds, 3 epochs, small crops."""
    config = base_config()
    config["crop"].update(size=32, slices=3)
    # deepbet alone (5 s a head) instead of the default HD-BET + deepbet second opinion (~30 s):
    # tests/test_preprocess_workflow.py runs the default through the workflow once.
    config["preprocess"]["brain_extraction"].update(backend="deepbet", second_opinion="none")
    config["models"] = [{"architecture": "resnet18", "inputs": ["t1ce", "flair", "flair+t1ce"],
                         "epochs": 3, "batch_size": 16, "patience": 0}]
    config["cv"].update(folds=3, val_fraction=0.34)
    config["fusion"].update(methods=["mean", "lr"], models=["t1ce_resnet18", "flair_resnet18"])
    return config


def report_facts_for(config: dict[str, Any], baseline: bool = False) -> Any:
    """oncoflow.run_facts.report_facts of ``config`` validated by the schema (a copy; defaults filled),
    with the baseline model when ``baseline``."""
    import copy

    from snakemake.utils import validate

    from oncoflow.run_facts import report_facts

    resolved = copy.deepcopy(config)
    validate(resolved, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return report_facts(resolved, ["baseline"] if baseline else [])


def write_config(workdir: Path, config: dict[str, Any]) -> Path:
    path = workdir / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def changed_config(workdir: Path, config: dict[str, Any]) -> Iterator[None]:
    """Run the block with ``config`` written to the workdir, then restore ``tiny_config()``."""
    write_config(workdir, config)
    try:
        yield
    finally:
        write_config(workdir, tiny_config())


def run_snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def planned_jobs(dry_run_output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run (empty when nothing to do)."""
    if "Job stats:" not in dry_run_output:
        return {}
    table = dry_run_output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    counts.pop("total", None)
    return counts
