"""Rule write_checklist: reporting/checklist_<name>.tsv and .md."""
from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.reporting import write_checklist
from oncoflow.run_facts import ReportFacts

write_checklist(sm.wildcards.checklist, ReportFacts.from_params(sm.params.facts), splits=sm.input.splits, qc=sm.input.qc,
                metrics=sm.input.metrics, failures=sm.input.failures, tsv=sm.output.tsv, md=sm.output.md,
                selection=sm.input.get("selection"), explanations=sm.input.get("explanations") or None)
