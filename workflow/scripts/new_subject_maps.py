"""Rule new_subject_maps: the bundled CNN models' explanation maps of the new subjects (oncoflow.predict.maps)."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow import atomic
from oncoflow.predict.maps import new_subject_maps
from oncoflow.segment.new_subjects import scored_fold_crops

p = sm.params.maps
_, fold_crops = scored_fold_crops(dict(zip(p["predicted_mask_subjects"], map(Path, sm.input.predicted_masks), strict=True)))
table = new_subject_maps(Path(p["bundle"]), pd.read_csv(sm.input.predictions, sep="\t", dtype={"subject": str}),
                         dict(zip(p["subjects"], map(Path, sm.input.crops), strict=True)), fold_crops, p["crop"],
                         p["methods"], Path(sm.output.maps), threads=sm.threads)
atomic.write_table(table, sm.output.table, sep="\t", index=False)
