"""Rule collect_report_overlays: the explanation overlays the Snakemake report embeds (reporting/overlays.tsv)."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.report.overlays import write_report_overlays

table = pd.read_csv(sm.input.overlays, sep="\t", dtype={"subject": str})
results = Path(sm.input.overlays).parent.parent  # reporting/overlays.tsv: overlay paths are relative to its parent
shown = write_report_overlays(table, results, Path(sm.output.overlays),
                              n_wrong=sm.params.explain["report_misclassified"],
                              n_correct=int(sm.params.explain["report_correct"]), seed=int(sm.params.seed))
print(f"report overlays: {shown} of {len(table)} CNN test patients' overlays in the report "
      f"({len(table) - shown} left out; all under explain/<model>/fold<k>/maps/)", file=sys.stderr)
