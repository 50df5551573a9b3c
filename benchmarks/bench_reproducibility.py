"""Benchmark: is CPU training bit-reproducible across CPUs (ISA kernels), thread counts and
switches, and what does each switch cost?

    .venv/bin/python benchmarks/bench_reproducibility.py            # writes benchmarks/reproducibility.md
    .venv/bin/python benchmarks/bench_reproducibility.py --quick    # tiny: prints, writes nothing

One tiny fold of ``train_fold`` (2D ResNet-18, 64x64 crops, as the demo trains) runs in a fresh child
process per setting, so that ATen picks its CPU kernels at start-up from ``ATEN_CPU_CAPABILITY``
(default = plain C++, avx2, avx512), oneDNN from ``ONEDNN_MAX_CPU_ISA`` and MKL from
``MKL_ENABLE_INSTRUCTIONS``: what another CPU would run. Each child prints the SHA-256 of its
predictions.tsv and of its checkpoint's weights, and the training time per epoch. Settings: the ISA,
1 or 2 threads, ``torch.use_deterministic_algorithms``, and ONCOFLOW_CPU_KERNELS=reproducible
(oneDNN off, MKL held to its AVX2 path: oncoflow.train.kernels).
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
from oncoflow.train.kernels import pin_cpu_libraries
pin_cpu_libraries()  # as oncoflow.runtime.start_job does, before torch loads MKL
import pandas as pd, torch
sys.path.insert(0, {tests!r})
from helpers_train import synthetic_cohort
from oncoflow.train.folds import make_folds
from oncoflow.train.loop import TrainConfig, train_fold
args = json.loads(sys.argv[1])
if args["deterministic"]:
    torch.use_deterministic_algorithms(True)
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

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
AVX512 = {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_ENABLE_INSTRUCTIONS": "AVX512"}
NO_SIMD = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
# (label, environment, threads, use_deterministic_algorithms, mkldnn off). ATen, oneDNN and MKL each
# pick their kernels by CPU at start-up: the environment makes this CPU act as another one.
SETTINGS = [
    ("today (this CPU, 1 thread)", {}, 1, False, False),
    ("as an AVX2 CPU", AVX2, 1, False, False),
    ("as an AVX-512 CPU", AVX512, 1, False, False),
    ("as a CPU without SIMD", NO_SIMD, 1, False, False),
    ("2 threads", {}, 2, False, False),
    ("use_deterministic_algorithms", {}, 1, True, False),
    ("reproducible (oneDNN off, MKL_CBWR=AVX2)", {}, 1, False, True),
    ("reproducible, as an AVX2 CPU", AVX2, 1, False, True),
    ("reproducible, as an AVX-512 CPU", AVX512, 1, False, True),
    ("reproducible, as a CPU without SIMD", NO_SIMD, 1, False, True),
    ("reproducible, as an AVX2 CPU, 2 threads", AVX2, 2, False, True),
]


def run(isa: dict[str, str], threads: int, deterministic: bool, no_mkldnn: bool, *, pairs: int, epochs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    for name in (*AVX2, "MKL_CBWR", "ONCOFLOW_CPU_KERNELS"):
        env.pop(name, None)
    env.update(isa)
    env["ONCOFLOW_CPU_KERNELS"] = "reproducible" if no_mkldnn else "native"  # train_fold reads it
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        args = dict(root=tmp, threads=threads, deterministic=deterministic, no_mkldnn=no_mkldnn,
                    pairs=pairs, epochs=epochs)
        child = CHILD.format(tests=str(REPO / "tests"))
        done = subprocess.run([sys.executable, "-c", child, json.dumps(args)], env=env, capture_output=True,
                              text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


STEP = r"""
import json, statistics, sys, time
import torch
from oncoflow.models.zoo import build_model
torch.set_num_threads(1)
torch.manual_seed(0)
model = build_model("resnet18", 1)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x, y = torch.randn(32, 1, 64, 64), torch.randint(0, 2, (32,)).float()
def step():
    opt.zero_grad()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
    loss.backward()
    opt.step()
times = {True: [], False: []}
for round in range(int(sys.argv[1])):
    for enabled in (True, False):  # interleaved: both see the same machine load
        torch.backends.mkldnn.enabled = enabled
        step()  # warm-up of this backend
        t0 = time.perf_counter()
        for _ in range(3):
            step()
        times[enabled].append((time.perf_counter() - t0) / 3)
print(json.dumps({"native": statistics.median(times[True]), "reproducible": statistics.median(times[False])}))
"""


def step_times(rounds: int) -> dict:
    """Median seconds per training step (ResNet-18, batch 32 of 64x64, 1 thread, forward + backward +
    AdamW) with oneDNN on (native) and off (reproducible), interleaved in one process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", STEP, str(rounds)], env=env, capture_output=True, text=True,
                          check=True)
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
    steps = step_times(3 if a.quick else 10)
    ratio = steps["reproducible"] / steps["native"]
    print(f"training step: native {steps['native']:.3f} s, reproducible {steps['reproducible']:.3f} s, "
          f"ratio {ratio:.2f}", flush=True)
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
            "batch 32), each setting in a fresh process. Train seconds include loading and predicting, on a "
            "machine shared with other jobs: the step time below is the cost measure.\n\n" + "\n".join(lines)
            + f"\n\nTraining step alone (ResNet-18, batch 32 of 64x64, 1 thread, forward + backward + AdamW; "
            f"median of 10 rounds, oneDNN on and off interleaved in one process): native "
            f"{steps['native']:.3f} s, reproducible (oneDNN off) {steps['reproducible']:.3f} s, "
            f"ratio {ratio:.2f}.\n")
    (REPO / "benchmarks/reproducibility.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
