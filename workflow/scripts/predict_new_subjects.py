"""Rule predict_new_subjects: the bundle's models applied to the new sheet's subjects."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow import atomic
from oncoflow.predict.apply import predict_subjects
from oncoflow.predict.bundle import extraction_record

p = sm.params.predict
samples = pd.DataFrame(p["samples"]).set_index("subject", drop=False)
features = pd.read_csv(sm.input.features[0], sep="\t", dtype={"subject": str}) if sm.input.features else None
variants = p.get("radiomics_variants", [])
radiomics = {v: pd.read_csv(f, sep="\t", dtype={"subject": str})
             for v, f in zip(variants, sm.input.radiomics, strict=True)}
extraction = {v: extraction_record(Path(f)) for v, f in zip(variants, sm.input.radiomics_settings, strict=True)}
table, per_fold = predict_subjects(
    Path(p["bundle"]), dict(zip(p["subjects"], map(Path, sm.input.crops), strict=True)), samples,
    pd.read_csv(sm.input.qc, sep="\t", dtype={"subject": str}, keep_default_na=False), features,
    p["preparation"], threads=sm.threads, radiomics=radiomics, extraction=extraction,
    predicted_masks=dict(zip(p["predicted_mask_subjects"], map(Path, sm.input.predicted_masks), strict=True)))
atomic.write_table(per_fold, sm.output.per_fold, sep="\t", index=False, float_format="%.6f")
atomic.write_table(table, sm.output.predictions, sep="\t", index=False, float_format="%.6f")
print(table["status"].value_counts().to_string(), file=sys.stderr)
