"""Rule fuse_predictions: late fusion of per-modality predictions within one fold."""
import sys

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.fusion.late import fuse

frames = [pd.read_csv(p, sep="\t") for p in sm.input]
fused = fuse(frames, sm.wildcards.method, seed=sm.params.seed)
fused.to_csv(sm.output.predictions, sep="\t", index=False, float_format="%.6f")
print(fused.attrs["note"], file=sys.stderr)
