"""Benchmark: seconds per patient of each explanation method (oncoflow.explain.maps) for a 2D and a
3D network on real crops, with the package functions rule explanation_maps calls.

    .venv/bin/python benchmarks/bench_explanation_maps.py --crops results/demo/subjects --n 4

``--crops``: a folder of <subject>/crop/crop.npz (a finished run's results/<study>/subjects). The
networks are seeded and untrained: the cost of a map does not depend on the weights. 2D: resnet18 on
the crop.slices (5) slices with most tumor; 3D: resnet10_3d on the crop resized to crop.depth (16).
Each figure is the median over patients of one trained-model map (the randomisation check doubles it).
One torch thread, as the rule runs (threads: 1). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from oncoflow.explain.maps import METHODS, explain
from oncoflow.explain.sanity import FoldModel, model_samples, randomised


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crops", type=Path, required=True)
    parser.add_argument("--n", type=int, default=4, help="patients")
    parser.add_argument("--modality", default="t1ce")
    args = parser.parse_args()
    torch.set_num_threads(1)
    crops = {p.parent.parent.name: p for p in sorted(args.crops.glob("*/crop/crop.npz"))[: args.n]}
    print(f"{len(crops)} patients, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| network | input | method | s / patient (median) |\n|---|---|---|---|")
    for architecture in ("resnet18", "resnet10_3d"):
        net = randomised(FoldModel(torch.nn.Identity(), architecture, [args.modality], False), 0)
        samples = model_samples(net, crops, {"slices": 5, "depth": 16})
        for method in METHODS:
            seconds = []
            for i in range(len(crops)):
                x = samples.x[samples.subject_index == i]
                start = time.perf_counter()
                explain(net.model, architecture, x, method)
                seconds.append(time.perf_counter() - start)
            print(f"| {architecture} | {tuple(samples.x.shape[1:])} x {len(x)} | {method} | "
                  f"{statistics.median(seconds):.2f} |")


if __name__ == "__main__":
    main()
