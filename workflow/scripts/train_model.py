"""Rule train_model: one model, one fold."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.train.loop import TrainConfig, train_fold

# init pretrained: the fold's pretrain checkpoint (a rule input, a list of one), not a config file
pretrained = Path(sm.input.pretrained[0]) if sm.input.pretrained else None
cfg = TrainConfig.from_params(sm.params.model, pretrained=pretrained)
crops = dict(zip(sm.params.subjects, map(Path, sm.input.crops), strict=True))
train_fold(cfg, crops, pd.read_csv(sm.input.splits, sep="\t"), out_dir=Path(sm.output.checkpoint).parent,
           model_name=sm.wildcards.model, fold=int(sm.wildcards.fold), threads=sm.threads)
