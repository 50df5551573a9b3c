"""Rule pretrain_model: one pretrain job, one model's backbone, one fold."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.train.folds import check_pretrain_inputs
from oncoflow.train.pretrain import PretrainConfig, pretrain_fold

fold = int(sm.wildcards.fold)
crops = dict(zip(sm.params.subjects, map(Path, sm.input.crops), strict=True))
splits = pd.read_csv(sm.input.splits, sep="\t")
check_pretrain_inputs(list(crops), splits, fold)  # exactly the fold's train + val patients
pretrain_fold(PretrainConfig.from_params(sm.params.pretrain), crops, splits, fold=fold,
              out_dir=Path(sm.output.checkpoint).parent, name=sm.wildcards.pretrain, threads=sm.threads)
