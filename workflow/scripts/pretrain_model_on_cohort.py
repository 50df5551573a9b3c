"""Rule pretrain_model_on_cohort: one pretrain job, one model's backbone, another cohort."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.train.pretrain import PretrainConfig, pretrain_cohort

crops = dict(zip(sm.params.subjects, map(Path, sm.input.crops), strict=True))
pretrain_cohort(PretrainConfig.from_params(sm.params.pretrain), crops, out_dir=Path(sm.output.checkpoint).parent,
                name=sm.wildcards.pretrain, threads=sm.threads)
