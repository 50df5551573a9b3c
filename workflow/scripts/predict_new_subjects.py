"""Rule predict_new_subjects: the bundle's models applied to the new sheet's subjects."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow import atomic
from oncoflow.predict.apply import predict_subjects

p = sm.params.predict
samples = pd.DataFrame(p["samples"]).set_index("subject", drop=False)
features = pd.read_csv(sm.input.features[0], sep="\t", dtype={"subject": str}) if sm.input.features else None
table, per_fold = predict_subjects(
    Path(p["bundle"]), dict(zip(p["subjects"], map(Path, sm.input.crops), strict=True)), samples,
    pd.read_csv(sm.input.qc, sep="\t", dtype={"subject": str}, keep_default_na=False), features,
    p["preparation"], threads=sm.threads)
atomic.write_table(per_fold, sm.output.per_fold, sep="\t", index=False, float_format="%.6f")
atomic.write_table(table, sm.output.predictions, sep="\t", index=False, float_format="%.6f")
print(table["status"].value_counts().to_string(), file=sys.stderr)
