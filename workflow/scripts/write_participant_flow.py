"""Rule write_participant_flow: reporting/flow.tsv and flow.png."""
from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.reporting import write_participant_flow

write_participant_flow(sm.params.settings, qc=sm.input.qc, splits=sm.input.splits, predictions=sm.input.predictions,
                       raw_images=list(sm.input.raw), subjects=list(sm.params.subjects), tsv=sm.output.tsv,
                       png=sm.output.png, crop_reports=list(sm.input.crop_reports))
