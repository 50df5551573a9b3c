"""ONCOFLOW_CPU_KERNELS=reproducible makes CPU training bit-reproducible across machines
(oncoflow.train.kernels): one tiny fold trained in fresh processes that act as an AVX2 and as an
AVX-512 CPU (ATen, oneDNN and MKL each limited to that instruction set) and with 1 and 2 threads
gives byte-identical predictions and weights. In the default native mode the same runs differ
(benchmarks/reproducibility.md)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
AVX512 = {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_ENABLE_INSTRUCTIONS": "AVX512"}
CHILD = """
import hashlib, json, sys
from pathlib import Path
from oncoflow.train.kernels import pin_cpu_libraries
pin_cpu_libraries()  # as oncoflow.runtime.start_job does, before torch loads MKL
import torch
sys.path.insert(0, sys.argv[3])
from helpers_train import synthetic_cohort
from oncoflow.train.folds import make_folds
from oncoflow.train.loop import TrainConfig, train_fold
root = Path(sys.argv[1])
sheet, crops = synthetic_cohort(root / "crops", [0, 1] * 6, seed=0, size=40)
splits = make_folds(sheet, label="label", folds=3, seed=0, val_fraction=0.3)
cfg = TrainConfig(architecture="resnet18", modalities=["t1c"], epochs=2, batch_size=8, slices=2, patience=0,
                  seed=0, device="cpu")
train_fold(cfg, crops, splits, out_dir=root / "out", model_name="m", fold=0, threads=int(sys.argv[2]))
state = torch.load(root / "out" / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
digest = hashlib.sha256(b"".join(t.numpy().tobytes() for _, t in sorted(state.items())))
print(json.dumps({"weights": digest.hexdigest(), "capability": torch.backends.cpu.get_cpu_capability(),
                  "predictions": (root / "out" / "predictions.tsv").read_text()}))
"""


def train(tmp_path: Path, name: str, isa: dict[str, str], threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (*AVX2, "MKL_CBWR")}
    env.update(isa, ONCOFLOW_CPU_KERNELS="reproducible", PYTHONPATH=os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / name), str(threads), str(REPO / "tests")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_training_is_bit_identical_on_avx2_and_avx512_cpus_and_thread_counts(tmp_path: Path) -> None:
    runs = {"avx2": train(tmp_path, "avx2", AVX2, 1), "avx512": train(tmp_path, "avx512", AVX512, 1),
            "avx2, 2 threads": train(tmp_path, "avx2t2", AVX2, 2)}
    assert runs["avx2"]["capability"] == "AVX2"
    first = runs["avx2"]
    for name, run in runs.items():
        assert run["weights"] == first["weights"], name
        assert run["predictions"] == first["predictions"], name
    assert hashlib.sha256(first["predictions"].encode()).hexdigest()  # predictions were written
    assert first["predictions"].count("\n") > 4
