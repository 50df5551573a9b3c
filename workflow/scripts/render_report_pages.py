"""Rule render_report_pages: the report's table pages (*.html beside each table) and
reporting/summary.html."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.report.pages import write_report_pages

i, o, study, e = sm.input, sm.output, sm.params.study, sm.params.evaluate
ci = f"{100 * float(e['ci_level']):g}% {'DeLong' if e['ci_method'] == 'delong' else 'bootstrap'}"
pages = {
    o.metrics: ("Metrics per model and cohort", i.metrics_md, "All columns: metrics.tsv."),
    o.metrics_per_fold: ("Metrics per fold", i.metrics_per_fold_md, "All columns: metrics_per_fold.tsv."),
    o.comparisons: ("Pre-specified comparisons (DeLong)", i.comparisons_md,
                    "All columns: comparisons.tsv; every other pair: comparisons_exploratory.tsv."),
    o.characteristics: ("Characteristics by partition (Table 1)", i.characteristics_md, ""),
    o.failures: ("Failure analysis", i.failures_md, "Explanation maps at half size: full size under "
                 "Explanation maps (and explain/<model>/fold<k>/maps/ in the results folder)."),
    o.flow: ("Participant flow", i.flow, "Each stage's count, and every subject lost at it with the reason."),
    o.qc: ("Preprocessing QC per subject", i.qc, "Flagged subjects first."),
}
write_report_pages(pages, i.checklists, o.checklists, o.summary, metrics=i.metrics,
                   figures={Path(p).stem: p for p in i.figures}, study=study["name"], label=study["label"],
                   positive=str(study["positive"]), ci=ci, half_size_images=[o.failures])
