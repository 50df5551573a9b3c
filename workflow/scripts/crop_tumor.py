"""Rules crop_tumor and crop_brain: tumor-centred (or whole-brain), brain-normalised crops of every
modality as one .npz (crop_brain: a subject without tumor mask)."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.crop.tumor_crop import CropSpec, crop_subject

modalities = sm.params.modalities
stats = crop_subject(
    sm.wildcards.subject,
    {m: Path(sm.input[m]) for m in modalities},
    Path(sm.input.brain_mask),
    Path(sm.input.tumor_mask) if sm.rule == "crop_tumor" else None,  # crop_brain: no tumor mask
    Path(sm.output.crop),
    CropSpec(size=sm.params.crop["size"], margin_mm=sm.params.crop["margin_mm"],
             region=sm.params.crop.get("region", "tumor")),
    tumor_mask_source=Path(sm.params.tumor_mask_source) if sm.params.tumor_mask_source else None,
)
pd.DataFrame([{"subject": sm.wildcards.subject, **stats}]).to_csv(sm.output.report, sep="\t", index=False)
print(f"{sm.wildcards.subject}: crop {stats}", file=sys.stderr)
