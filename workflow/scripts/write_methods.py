"""Rule write_methods: methods.md, a methods section written from the resolved config."""
import json
from pathlib import Path

import pandas as pd

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.markdown import markdown_to_html
from oncoflow.report.methods import cohort_counts, render_methods
from oncoflow.run_facts import ReportFacts
from oncoflow.report.selection import read_selection
from oncoflow.report.explanations import read_explanations

provenance = json.loads(Path(sm.input.provenance).read_text())
cohort = cohort_counts(pd.read_csv(sm.input.splits, sep="\t", dtype={"site": str}, keep_default_na=False),
                       dicom=sm.params.dicom)
facts = ReportFacts.from_params(sm.params.facts)
text = render_methods(facts, cohort, software=provenance["software"], git=provenance["git"],
                      python=provenance.get("python"), comparisons=pd.read_csv(sm.input.comparisons, sep="\t"),
                      selection=read_selection(sm.input.get("selection")),
                      explanations=read_explanations(sm.input.get("explanations")),
                      predicted_masks=sm.params.predicted_masks)
Path(sm.output.md).write_text(text, encoding="utf-8")
Path(sm.output.html).write_text(markdown_to_html(text, f"Methods: {facts.config['study']['name']}"), encoding="utf-8")
