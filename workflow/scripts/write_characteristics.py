"""Rule write_characteristics: reporting/characteristics.tsv and .md (Table 1)."""
from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.reporting import write_characteristics

write_characteristics(sm.params.settings, splits=sm.input.splits, tsv=sm.output.tsv, md=sm.output.md)
