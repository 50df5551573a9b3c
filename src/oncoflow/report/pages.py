"""The Snakemake report's pages (rule render_report_pages): every results table as an HTML page the
report shows inline (the TSV stays beside it for download), and ``reporting/summary.html``, the
study's headline table and figures, which the report's landing page (workflow/report/workflow.rst)
opens with.

The table pages render the readable views the tables' writers made (``metrics.md``,
``characteristics.md``, ...: the columns a paper shows, formatted); tables without such a view
(``qc/qc.tsv``) are rendered from the TSV. Figures are embedded as data URIs, so
``summary.html`` also stands alone.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from oncoflow import atomic
from oncoflow.metrics.tables import to_html
from oncoflow.report.markdown import html_page, markdown_body

#: Figures of the summary, in order: the first stands beside the headline table.
SUMMARY_FIGURES = ("roc", "calibration", "pr", "dca")
#: Scoped to the summary's root, so it styles nothing else when the report inlines it.
SUMMARY_STYLE = """
.oncoflow-summary{font-family:system-ui,sans-serif;color:#111;line-height:1.35}
.oncoflow-summary h2{font-size:1.1rem;margin:0 0 .25rem}
.oncoflow-summary p{margin:.15rem 0 .4rem;font-size:.8rem}
.oncoflow-summary .row{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start;margin-bottom:1rem}
.oncoflow-summary .lead{flex:0 1 auto;max-width:100%;overflow-x:auto}
.oncoflow-summary figure{margin:0;flex:1 1 20rem;max-width:40rem}
.oncoflow-summary figure.first{flex:1 1 0;min-width:18rem;max-width:none}
.oncoflow-summary img{display:block;max-width:100%;height:auto;margin:0;border:1px solid #ddd}
.oncoflow-summary figure.first img{max-height:calc(100vh - 6rem);width:auto}
.oncoflow-summary figcaption{font-size:.7rem;color:#444;margin:0}
.oncoflow-summary table{border-collapse:collapse;font-size:.75rem;margin:.3rem 0;width:auto}
.oncoflow-summary th,.oncoflow-summary td{border:1px solid #ccc;padding:.1rem .35rem;text-align:left;
 vertical-align:top;line-height:1.3}
.oncoflow-summary td{white-space:nowrap}
.oncoflow-summary td.num,.oncoflow-summary th.num{text-align:right;font-variant-numeric:tabular-nums}
.oncoflow-summary th{background:#f3f4f6;font-weight:600}
"""


def markdown_page(md: str | Path, title: str, note: str = "", *, image_step: int = 1) -> str:
    """A table's Markdown view (``metrics.md``, a checklist, ...) as a page, ``note`` above it and
    ``title`` as its heading unless the Markdown opens with one; its images embedded (data URIs),
    every ``image_step``-th pixel each way (2: half size, a quarter of the bytes)."""
    text = Path(md).read_text()
    heading = "" if text.lstrip().startswith("#") else f"<h1>{html.escape(title)}</h1>\n"
    intro = f"<p>{html.escape(note)}</p>\n" if note else ""
    return html_page(title, heading + intro + markdown_body(
        text, image=lambda src: _embedded(Path(md).parent, src, image_step)))


def _embedded(folder: Path, src: str, step: int = 1) -> str:
    """A Markdown image's file (relative to the Markdown's ``folder``) as a data URI: the page
    stands alone in the self-contained report; ``step`` > 1 embeds it reduced (mean of step x step pixels)."""
    path = folder / src
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: image {src} of the page is missing ({path})")
    if step == 1:
        return _data_uri(path)
    import io

    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    h, w = img.shape[0] // step * step, img.shape[1] // step * step
    small = img[:h, :w].reshape(h // step, step, w // step, step, -1).mean(axis=(1, 3)).clip(0, 1)
    buffer = io.BytesIO()
    mpimg.imsave(buffer, small, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def tsv_page(tsv: str | Path, title: str, note: str = "") -> str:
    """A TSV with no Markdown view, every column, as a page."""
    table = pd.read_csv(tsv, sep="\t", keep_default_na=False, na_values=[""])
    intro = f"<p>{html.escape(note)}</p>\n" if note else ""
    return html_page(title, f"<h1>{html.escape(title)}</h1>\n{intro}{to_html(table, na_rep='')}")  # empty as written


def _fmt(x: float, digits: int = 2) -> str:
    return "NA" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def headline_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per model and cohort: patients, AUC with its CI, sensitivity and specificity at the
    model's thresholds, calibration slope and Brier score of the recalibrated risks."""
    rows = []
    for _, r in metrics.iterrows():
        rows.append({"model": r["model"], "cohort": r["cohort"],
                     "n (positive)": f"{int(r['n'])} ({int(r['n_pos'])})",
                     "AUC [CI]": f"{_fmt(r['auc'])} [{_fmt(r['auc_ci_low'])}, {_fmt(r['auc_ci_high'])}]",
                     "sensitivity": _fmt(r["sensitivity"]), "specificity": _fmt(r["specificity"]),
                     "calibration slope": _fmt(r["cal_slope"]), "Brier": _fmt(r["brier"], 3)})
    return pd.DataFrame(rows)


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def summary_html(metrics: pd.DataFrame, figures: Mapping[str, str | Path], *, study: str, label: str,
                 positive: str, ci: str) -> str:
    """The landing page's block: the headline table beside the first figure, then the others.
    ``figures``: kind -> PNG (those of :data:`SUMMARY_FIGURES` that exist, in that order); ``ci``
    names the AUC interval (e.g. "DeLong 95%")."""
    order = {"cv": 0}
    metrics = metrics.sort_values("cohort", key=lambda c: c.map(lambda v: order.get(v, 1)), kind="stable")
    shown = [(k, Path(figures[k])) for k in SUMMARY_FIGURES if k in figures]
    figs = [f'<figure class="{"first" if i == 0 else ""}"><img alt="{k} figure" src="{_data_uri(p)}">'
            f"<figcaption>figures/{p.name} (PDF beside it)</figcaption></figure>" for i, (k, p) in enumerate(shown)]
    intro = (f"<h2>Study {html.escape(study)}: {html.escape(label)} (positive: {html.escape(positive)})</h2>"
             f"<p><b>cv</b>: the pooled cross-validation test folds, each patient predicted by a model "
             f"that never saw them; <b>external</b>: the fold models' mean probability. AUC with its "
             f"{html.escape(ci)} interval; sensitivity and specificity at each fold's threshold; calibration "
             f"of the recalibrated risks. Every column: Tables, metrics.</p>")
    return (f'<div class="oncoflow-summary"><meta charset="utf-8"><style>{SUMMARY_STYLE}</style>{intro}\n'
            f'<div class="row"><div class="lead">{to_html(headline_table(metrics))}</div>{"".join(figs[:1])}</div>\n'
            f'<div class="row">{"".join(figs[1:])}</div></div>\n')


def write_report_pages(pages: Mapping[str, tuple[str, str | Path, str]], checklists: Sequence[str | Path],
                       checklists_html: str | Path, summary: str | Path, *, metrics: str | Path,
                       figures: Mapping[str, str | Path], study: str, label: str, positive: str,
                       ci: str, half_size_images: Sequence[str] = ()) -> None:
    """Rule render_report_pages. ``pages``: output HTML -> (title, source .md or .tsv, note);
    ``half_size_images``: the pages whose images the report also embeds at full size elsewhere
    (the failure page's explanation overlays: category "Explanation maps")."""
    for out, (title, source, note) in pages.items():
        if str(source).endswith(".md"):
            text = markdown_page(source, title, note, image_step=2 if out in half_size_images else 1)
        else:
            text = tsv_page(source, title, note)
        atomic.write_text(out, text)
    body = "\n".join(markdown_body(Path(md).read_text()) for md in checklists)
    atomic.write_text(checklists_html, html_page("Reporting checklists", body))
    atomic.write_text(summary, summary_html(pd.read_csv(metrics, sep="\t"), figures, study=study,
                                            label=label, positive=positive, ci=ci))
