"""Rule archive: one .tar.gz with tables, figures, manifest, config, sample sheet and env files."""
import json
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.archive import format_size, record_digest, write_archive

i = sm.input
members = {name: Path(path) for name, path in sm.params.folders.items()}  # left out when absent
members.update({
    "folds/splits.tsv": Path(i.splits),
    "provenance.json": Path(i.provenance),
    f"samples/{Path(i.samples).name}": Path(i.samples),
    "config/resolved.json": (json.dumps(dict(sm.params.config), indent=2, default=str) + "\n").encode(),
    "pyproject.toml": Path(i.pyproject),
})
members.update({f"config/{Path(f).name}": Path(f) for f in i.config_files})
members.update({f"envs/{Path(f).name}": Path(f) for f in i.envs})
checksums = write_archive(Path(sm.output.archive), members, root=sm.params.root)
print(f"{sm.output.archive}: {len(checksums)} files, {format_size(Path(sm.output.archive).stat().st_size)}",
      file=sys.stderr)
record_digest(Path(sm.output.archive), "archive")
