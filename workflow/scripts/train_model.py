"""Rule train_model: one model, one fold."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.train.loop import TrainConfig, train_fold

p = dict(sm.params.model)
crops = {Path(c).parent.parent.name: Path(c) for c in sm.input.crops}
init = p.get("init", "scratch")
if init == "pretrained":  # the fold's pretrain_model checkpoint (rule input), not a config file
    (weights,) = map(Path, sm.input.pretrained)  # a list of one (train.smk)
else:
    weights = Path(p["weights"]) if p.get("weights") else None
cfg = TrainConfig(
    architecture=p["architecture"], modalities=p["modalities"], init=init, weights=weights,
    epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"], weight_decay=p["weight_decay"],
    patience=p["patience"], imbalance=p["imbalance"], slices=p["crop"]["slices"],
    depth=p["crop"]["depth"], seed=p["seed"],
    cotrain_segmentation=bool(p.get("cotrain_segmentation", False)),
    seg_weight=float(p.get("seg_weight", 0.5)),
)
train_fold(cfg, crops, pd.read_csv(sm.input.splits, sep="\t"), out_dir=Path(sm.output.checkpoint).parent,
           model_name=sm.wildcards.model, fold=int(sm.wildcards.fold), threads=sm.threads)
