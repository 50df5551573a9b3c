"""Rule bundle: the trained study in one portable .tar.gz (oncoflow.predict.bundle)."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.predict.bundle import build_bundle
from oncoflow.report.archive import format_size, record_digest

b = sm.params.bundle
out = Path(sm.output.bundle)
checksums = build_bundle(out, results=Path(b["results"]), config=dict(sm.params.config), cnn=b["cnn"],
                         fused=b["fused"], fusion_methods=b["fusion_methods"], baseline=b["baseline"],
                         folds=b["folds"], reports={k: Path(v) for k, v in b["reports"].items()},
                         left_out=b["left_out"], radiomics=b["radiomics"],
                         segmenters={int(k): Path(v) for k, v in b.get("segmenters", {}).items()})
print(f"{out}: {len(checksums)} files, {format_size(out.stat().st_size)}; not bundled: {b['left_out'] or 'none'}",
      file=sys.stderr)
record_digest(Path(sm.output.bundle), "bundle")
