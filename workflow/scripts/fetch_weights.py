"""Rules fetch_*_weights: download the weights whose files are this job's outputs (login node)."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.models.weights import fetch, required_weights

outputs = {Path(f) for f in sm.output}
for weights in required_weights(sm.config):
    if outputs & set(weights.files):
        print(f"{weights.kind}: {weights.url} -> {weights.path}", file=sys.stderr)
        for path in fetch(weights):
            print(f"  {path} ({path.stat().st_size} bytes)", file=sys.stderr)
