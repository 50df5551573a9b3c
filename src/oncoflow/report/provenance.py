"""provenance.json: what produced a results folder (config, code version, software, inputs)."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("oncoflow", "snakemake", "antspyx", "deepbet", "nibabel", "pydicom", "dcm2niix", "torch",
            "torchvision", "monai", "scikit-learn", "numpy", "scipy", "pandas")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_state(repo: Path) -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {"commit": run("rev-parse", "HEAD") or None, "dirty": bool(run("status", "--porcelain"))}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_provenance(out: Path, *, config: dict[str, Any], repo: Path, inputs: dict[str, Path]) -> None:
    record = {
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_state(repo),
        "config": config,
        "inputs": {k: {"path": str(p), "sha256": sha256(p)} for k, p in inputs.items()},
        "software": versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    out.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
