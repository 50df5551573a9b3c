"""Rule new_subject_tumor_masks: the co-trained bundled CNN models' own tumor masks of the new subjects
(oncoflow.predict.tumor_masks)."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow import atomic
from oncoflow.predict.tumor_masks import new_subject_tumor_masks
from oncoflow.segment.new_subjects import scored_fold_crops

p = sm.params.masks
_, fold_crops = scored_fold_crops(dict(zip(p["predicted_mask_subjects"], map(Path, sm.input.predicted_masks), strict=True)))
table = new_subject_tumor_masks(Path(p["bundle"]), pd.read_csv(sm.input.predictions, sep="\t", dtype={"subject": str}),
                                dict(zip(p["subjects"], map(Path, sm.input.crops), strict=True)), fold_crops, p["crop"],
                                Path(sm.output.masks), threads=sm.threads)
atomic.write_table(table, sm.output.table, sep="\t", index=False, float_format="%.4f")
