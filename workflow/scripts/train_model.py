"""Rule train_model: one model, one fold."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.train.loop import TrainConfig, train_fold

p = dict(sm.params.model)
crops = {Path(c).parent.parent.name: Path(c) for c in sm.input.crops}
cfg = TrainConfig(
    architecture=p["architecture"], modalities=p["modalities"], init=p.get("init", "scratch"),
    weights=Path(p["weights"]) if p.get("weights") else None, epochs=p["epochs"],
    batch_size=p["batch_size"], lr=p["lr"], weight_decay=p["weight_decay"], patience=p["patience"],
    imbalance=p["imbalance"], slices=p["crop"]["slices"], depth=p["crop"]["depth"], seed=p["seed"],
)
train_fold(cfg, crops, pd.read_csv(sm.input.splits, sep="\t"), out_dir=Path(sm.output.checkpoint).parent,
           model_name=sm.wildcards.model, fold=int(sm.wildcards.fold), threads=sm.threads)
