"""Rule write_provenance: resolved config, git commit, versions and checksums beside the tables."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.provenance import write_provenance

write_provenance(Path(sm.output[0]), config=sm.params.config, repo=Path(sm.params.repo),
                 inputs={k: Path(v) for k, v in sm.input.items()})
