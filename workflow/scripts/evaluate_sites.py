"""Rule evaluate_sites: tables/metrics_by_site.{tsv,md} and figures/sites.{png,pdf}."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.site_figure import evaluate_sites

ev = sm.params.evaluate
table = evaluate_sites(sm.input.predictions, Path(sm.output.metrics).parent, Path(sm.output.png).parent,
                       ci_method=ev["ci_method"], ci_level=ev["ci_level"], n_boot=ev["n_boot"], seed=sm.params.seed)
print(table.to_string(), file=sys.stderr)
