"""Rule pretrain_model_on_cohort: one pretrain job, one model's backbone, another cohort."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.train.pretrain import pretrain_cohort, pretrain_config

crops = {Path(c).parent.parent.name: Path(c) for c in sm.input.crops}
pretrain_cohort(pretrain_config(sm.params.pretrain), crops, out_dir=Path(sm.output.checkpoint).parent,
                name=sm.wildcards.pretrain, threads=sm.threads)
