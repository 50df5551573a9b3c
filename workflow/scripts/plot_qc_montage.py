"""Rule plot_qc_montage: one subject's QC montage (PNG) and row of QC numbers (TSV)."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.preprocess.qc import AtlasView, plot_montage, subject_qc

images = {m: Path(sm.input[m]) for m in sm.params.modalities}
tumor = Path(sm.input.tumor_mask) if sm.input.get("tumor_mask") else None
atlas = AtlasView(Path(sm.input.atlas_image), Path(sm.input.atlas_brain_mask), Path(sm.input.template_mask),
                  Path(sm.input.atlas_tumor_mask)) if sm.input.get("atlas_image") else None
qc = subject_qc(sm.wildcards.subject, images, Path(sm.input.brain_mask), reference=sm.params.reference,
                registration=Path(sm.input.registration), brain_report=Path(sm.input.brain_report),
                tumor_mask=tumor, atlas_report=Path(sm.input.atlas_report) if atlas else None)
plot_montage(qc, images, Path(sm.input.brain_mask), Path(sm.output.png), tumor_mask=tumor,
             second_mask=Path(sm.input.second_mask), atlas=atlas,
             predicted_mask=Path(sm.input.predicted_mask) if sm.input.get("predicted_mask") else None)
pd.DataFrame([qc.row]).to_csv(sm.output.row, sep="\t", index=False)
print(f"{sm.wildcards.subject}: {qc.row['flag'] or 'no flags'}", file=sys.stderr)
