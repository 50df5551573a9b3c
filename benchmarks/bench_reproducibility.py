"""Benchmark: is CPU training bit-reproducible across CPUs (ISA kernels), thread counts and
switches, and what does each switch cost?

    .venv/bin/python benchmarks/bench_reproducibility.py            # writes benchmarks/reproducibility.md
    .venv/bin/python benchmarks/bench_reproducibility.py --quick    # tiny: prints, writes nothing

One tiny fold of ``train_fold`` (2D ResNet-18, 64x64 crops, as the demo trains) runs in a fresh child
process per setting, so that ATen picks its CPU kernels at start-up from ``ATEN_CPU_CAPABILITY``
(default = plain C++, avx2, avx512: what another CPU would run). Each child prints the SHA-256 of its
predictions.tsv and of its checkpoint's weights, and the training time per epoch. Settings: the ISA,
1 or 2 threads, ``torch.use_deterministic_algorithms``, and the oneDNN (mkldnn) backend off.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = r"""
import hashlib, json, sys, time
from pathlib import Path
import pandas as pd, torch
sys.path.insert(0, {tests!r})
from helpers_train import synthetic_cohort
from oncoflow.train.folds import make_folds
from oncoflow.train.loop import TrainConfig, train_fold
args = json.loads(sys.argv[1])
if args["deterministic"]:
    torch.use_deterministic_algorithms(True)
if args["no_mkldnn"]:
    torch.backends.mkldnn.enabled = False
root = Path(args["root"])
sheet, crops = synthetic_cohort(root / "crops", [0, 1] * args["pairs"], seed=0, size=64)
splits = make_folds(sheet, label="label", folds=3, seed=0, val_fraction=0.3)
cfg = TrainConfig(architecture="resnet18", modalities=["t1c"], epochs=args["epochs"], batch_size=32,
                  slices=5, patience=0, seed=42, device="cpu")
out = root / "fold0"
t0 = time.perf_counter()
train_fold(cfg, crops, splits, out_dir=out, model_name="t1c_resnet18", fold=0, threads=args["threads"])
seconds = time.perf_counter() - t0
state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
state = state.get("model", state) if isinstance(state, dict) else state
digest = hashlib.sha256()
for name, tensor in sorted(state.items()):
    if torch.is_tensor(tensor):
        digest.update(name.encode()); digest.update(tensor.detach().cpu().numpy().tobytes())
print(json.dumps({{"predictions": hashlib.sha256((out / "predictions.tsv").read_bytes()).hexdigest()[:16],
                  "weights": digest.hexdigest()[:16], "seconds": seconds,
                  "capability": torch.backends.cpu.get_cpu_capability()}}))
"""

SETTINGS = [  # (label, ISA, threads, deterministic, no_mkldnn)
    ("today (this CPU's ISA, 1 thread)", None, 1, False, False),
    ("ISA avx2 (ATen and oneDNN)", "avx2", 1, False, False),
    ("ISA avx512 (ATen and oneDNN)", "avx512", 1, False, False),
    ("ISA default (no SIMD)", "default", 1, False, False),
    ("2 threads", None, 2, False, False),
    ("use_deterministic_algorithms", None, 1, True, False),
    ("mkldnn off", None, 1, False, True),
    ("mkldnn off, ISA avx2", "avx2", 1, False, True),
    ("mkldnn off, ISA avx512", "avx512", 1, False, True),
    ("mkldnn off, ISA default", "default", 1, False, True),
    ("mkldnn off, ISA avx2, 2 threads", "avx2", 2, False, True),
    ("today again (timing noise)", None, 1, False, False),
]
# oneDNN picks its own kernels by CPU, independently of ATen: simulate both.
ONEDNN_ISA = {"default": "SSE41", "avx2": "AVX2", "avx512": "AVX512_CORE"}


def run(isa: str | None, threads: int, deterministic: bool, no_mkldnn: bool, *, pairs: int, epochs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("ATEN_CPU_CAPABILITY", None)
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if isa:
        env["ATEN_CPU_CAPABILITY"] = isa
        env["ONEDNN_MAX_CPU_ISA"] = ONEDNN_ISA[isa]
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        args = dict(root=tmp, threads=threads, deterministic=deterministic, no_mkldnn=no_mkldnn,
                    pairs=pairs, epochs=epochs)
        child = CHILD.format(tests=str(REPO / "tests"))
        done = subprocess.run([sys.executable, "-c", child, json.dumps(args)], env=env, capture_output=True,
                              text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    a = parser.parse_args()
    pairs, epochs = (6, 1) if a.quick else (12, 4)
    rows = []
    for label, isa, threads, det, no_mkldnn in SETTINGS:
        t0 = time.perf_counter()
        r = run(isa, threads, det, no_mkldnn, pairs=pairs, epochs=epochs)
        rows.append((label, r))
        print(f"{label:40s} {r['capability']:8s} predictions {r['predictions']} weights {r['weights']} "
              f"train {r['seconds']:.1f} s (child {time.perf_counter() - t0:.1f} s)", flush=True)
    if a.quick:
        return
    base = rows[0][1]["seconds"]
    lines = ["| setting | ATen kernels | predictions.tsv sha256 | weights sha256 | train s | vs today |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label, r in rows:
        lines.append(f"| {label} | {r['capability']} | `{r['predictions']}` | `{r['weights']}` | "
                     f"{r['seconds']:.1f} | {r['seconds'] / base:.2f} |")
    from oncoflow.report.provenance import cpu_model

    text = (f"# CPU training reproducibility\n\nMeasured {date.today()} on {cpu_model()}, torch "
            f"{__import__('torch').__version__}, by `benchmarks/bench_reproducibility.py`: one fold of "
            f"`train_fold` (2D ResNet-18, 64x64 crops, {2 * pairs} synthetic subjects, {epochs} epochs, "
            "batch 32), each setting in a fresh process.\n\n" + "\n".join(lines) + "\n")
    (REPO / "benchmarks/reproducibility.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
