"""Rule write_model_card: reporting/model_card.{md,json,html}."""
from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.model_card import write_model_card
from oncoflow.run_facts import ReportFacts

i = sm.input
page = i.study_page if isinstance(i.study_page, str) else None  # an empty list when the study has none
write_model_card(ReportFacts.from_params(sm.params.facts), metrics=i.metrics, samples=i.samples, splits=i.splits, qc=i.qc,
                 provenance=i.provenance, study_page=page, md=sm.output.md, json_out=sm.output.json,
                 html=sm.output.html, selection=i.get("selection"), prediction_sets=i.prediction_sets,
                 explanations=i.get("explanations"))
