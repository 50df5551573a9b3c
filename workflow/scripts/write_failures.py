"""Rule write_failures: reporting/failures.tsv and .md."""
from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.reporting import write_failures

write_failures(predictions=sm.input.predictions, qc=sm.input.qc, metrics=sm.input.metrics, tsv=sm.output.tsv,
               md=sm.output.md, overlays=sm.output.overlays, explain=sm.params.explain, seed=sm.params.seed,
               cnn=sm.params.cnn, explanations=sm.input.get("explanations") or None)
