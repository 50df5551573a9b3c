"""Rules crop_tumor and crop_brain: tumor-centred (or whole-brain), brain-normalised crops of every
modality as one .npz (crop_brain: a subject without tumor mask). A cross-fitted predicted tumor
mask (segment.crop_mask) that is empty or implausible is not cropped: the .npz and crop.tsv say why."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.crop.tumor_crop import CropSpec, crop_subject
from oncoflow.segment.plausibility import crop_predicted_mask

modalities = sm.params.modalities
images = {m: Path(sm.input[m]) for m in modalities}
spec = CropSpec(size=sm.params.crop["size"], margin_mm=sm.params.crop["margin_mm"],
                region=sm.params.crop.get("region", "tumor"), field_of_view_mm=sm.params.crop.get("field_of_view_mm"))
bounds = sm.params.get("predicted_mask_bounds")  # a predicted tumor mask's plausibility; none for manual
if bounds:
    stats = crop_predicted_mask(sm.wildcards.subject, images, Path(sm.input.brain_mask), Path(sm.input.tumor_mask),
                                Path(sm.output.crop), spec, bounds)
else:
    stats = crop_subject(
        sm.wildcards.subject,
        images,
        Path(sm.input.brain_mask),
        Path(sm.input.tumor_mask) if sm.rule == "crop_tumor" else None,  # crop_brain: no tumor mask
        Path(sm.output.crop),
        spec,
        tumor_mask_source=Path(sm.params.tumor_mask_source) if sm.params.tumor_mask_source else None,
    )
pd.DataFrame([{"subject": sm.wildcards.subject, **stats}]).to_csv(sm.output.report, sep="\t", index=False)
print(f"{sm.wildcards.subject}: crop {stats}", file=sys.stderr)
