"""Rule collect_report_overlays: the explanation overlays the Snakemake report embeds, and what it leaves out."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.report.explanations import read_explanations
from oncoflow.report.failures import MapIndex, classified
from oncoflow.report.overlays import choose_overlays, write_report_overlays

out = Path(sm.output.overlays)
results = Path(sm.params.results)
predictions = pd.read_csv(sm.input.predictions, sep="\t", dtype={"subject": str})
qc = pd.read_csv(sm.input.qc, sep="\t", dtype={"subject": str})
maps = MapIndex(frozenset(sm.params.cnn), read_explanations(sm.input.explanations), results)
n_correct, seed = int(sm.params.explain["report_correct"]), int(sm.params.seed)
table = choose_overlays(classified(predictions, qc, maps), classified(predictions, qc, maps, wrong=False),
                        n_correct=n_correct, seed=seed)
shown = write_report_overlays(table, results, out, n_correct=n_correct, seed=seed)
print(f"report overlays: {shown} of {len(table)} CNN test patients' overlays in the report "
      f"({len(table) - shown} left out; all under explain/<model>/fold<k>/maps/)", file=sys.stderr)
