"""Rule write_provenance: the manifest (provenance.json) beside the tables."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.provenance import write_provenance

p = sm.params
record = write_provenance(
    Path(sm.output[0]), config=p.config, repo=Path(p.repo),
    inputs={k: Path(v) for k, v in sm.input.items()}, subjects=p.subjects,
    config_files=[Path(f) for f in p.config_files], weights=[Path(f) for f in p.weights],
    env_files=[Path(f) for f in p.envs],
    benchmarks=Path(p.benchmarks), threads=sm.threads, cache=Path(p.cache),
    record_host=bool(p.config["evaluate"].get("record_host", True)), archived=list(p.archived),
)
print(f"{record['subjects']['files']} input files, {record['subjects']['bytes']} bytes, "
      f"{len(record['rule_times'])} rules timed", file=sys.stderr)
