"""Rule pretrain_model: one pretrain job, one model's backbone, one fold."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.train.folds import check_pretrain_inputs
from oncoflow.train.pretrain import PretrainConfig, pretrain_fold

p = dict(sm.params.pretrain)
fold = int(sm.wildcards.fold)
crops = {Path(c).parent.parent.name: Path(c) for c in sm.input.crops}
splits = pd.read_csv(sm.input.splits, sep="\t")
check_pretrain_inputs(list(crops), splits, fold)  # exactly the fold's train + val patients
cfg = PretrainConfig(
    task=p["task"], architecture=p["architecture"], modalities=p["modalities"], init=p["init"],
    weights=Path(p["weights"]) if p.get("weights") else None, epochs=p["epochs"],
    batch_size=p["batch_size"], lr=p["lr"], weight_decay=p["weight_decay"], depth=p["crop"]["depth"],
    seed=p["seed"],
)
pretrain_fold(cfg, crops, splits, fold=fold, out_dir=Path(sm.output.checkpoint).parent,
              name=sm.wildcards.pretrain, threads=sm.threads)
