"""figures/sites.{png,pdf}: the per-site panel of a multi-centre study (metrics_by_site.tsv).

A forest plot per cohort (cross-validation; each external cohort): one row per site, labelled with
its n and positives, and per model its AUC with the CI as a horizontal bar, in the models' colours
of the other figures; chance (0.5) dashed. A site without an AUC (a single class) keeps its row,
marked "no AUC", so no site disappears from the figure. ``evaluate_sites`` is the rule that writes
it with the per-site tables (oncoflow.metrics.sites).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from oncoflow.atomic import atomic_write
from oncoflow.metrics.sites import metrics_by_site, write_site_tables
from oncoflow.report.figures import RC, cohort_title, model_colors


def draw_sites(table: pd.DataFrame, level: float = 0.95) -> Figure:
    """The per-site figure from :func:`oncoflow.metrics.sites.metrics_by_site`'s table."""
    if table.empty:
        raise ValueError("no per-site metrics to plot: the table is empty")
    cohorts = list(dict.fromkeys(table["cohort"]))
    models = list(dict.fromkeys(table["model"]))
    colors = model_colors(models)
    n_sites = max(table.loc[table["cohort"] == c, "site"].nunique() for c in cohorts)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(5.5 * len(cohorts), 1.6 + 0.45 * n_sites * max(1, len(models) / 2)),
                     layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(cohorts), squeeze=False)[0]
        for ax, cohort in zip(axes, cohorts):
            part = table[table["cohort"] == cohort]
            sites = sorted(part["site"].unique(), reverse=True)  # first site on top
            step = 0.7 / max(1, len(models))
            labelled: set[str] = set()
            for i, model in enumerate(models):
                rows = part[part["model"] == model].set_index("site")
                for j, site in enumerate(sites):
                    if site not in rows.index:
                        continue
                    r = rows.loc[site]
                    y = j + 0.35 - step * (i + 0.5)
                    if np.isfinite(r["auc"]):
                        ax.errorbar(r["auc"], y, xerr=[[r["auc"] - r["auc_ci_low"]], [r["auc_ci_high"] - r["auc"]]],
                                    fmt="o", color=colors[model], ms=5, capsize=2, lw=1.2,
                                    label=None if model in labelled else model)
                        labelled.add(model)
                    else:
                        ax.text(0.02, y, f"{model}: no AUC (one class)", fontsize=7, va="center", color="0.4")
            first = part.drop_duplicates("site").set_index("site")
            ax.set_yticks(range(len(sites)))
            ax.set_yticklabels([f"{s}\nn = {int(first.at[s, 'n'])}, {int(first.at[s, 'n_pos'])} pos" for s in sites])
            ax.axvline(0.5, color="0.5", ls="--", lw=0.8)
            ax.set_xlim(0, 1)
            ax.set_ylim(-0.6, len(sites) - 0.4)
            ax.set_xlabel(f"AUC ({100 * level:g}% CI)")
            ax.set_title(cohort_title(cohort) + ", per site", loc="left")
            ax.grid(True, axis="x", lw=0.4, color="0.9")
        legend = {}
        for ax in axes:
            legend.update(zip(*reversed(ax.get_legend_handles_labels())))
        if legend:  # below the panels, never over a site's interval
            fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=min(3, len(legend)))
        fig.suptitle("AUC per site", fontsize=12, fontweight="bold")
    return fig


def save_site_figure(fig: Figure, png: str | Path, pdf: str | Path, dpi: int = 150) -> None:
    """PNG and PDF, each written all-or-nothing; the PDF carries no date (reruns: same bytes)."""
    with atomic_write(png, check=None) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    with atomic_write(pdf, check=None) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None})


def evaluate_sites(predictions: str | Path, tables: Path, figures: Path, *, ci_method: str = "delong",
                   ci_level: float = 0.95, n_boot: int = 2000, seed: int | None = 0) -> pd.DataFrame:
    """Rule evaluate_sites: tables/metrics_by_site.{tsv,md} and figures/sites.{png,pdf} from
    tables/predictions.tsv."""
    pooled = pd.read_csv(predictions, sep="\t", dtype={"site": str}, keep_default_na=False)
    table = metrics_by_site(pooled, ci_method=ci_method, level=ci_level, n_boot=n_boot, seed=seed)
    tables, figures = Path(tables), Path(figures)
    write_site_tables(table, tables / "metrics_by_site.tsv", tables / "metrics_by_site.md")
    save_site_figure(draw_sites(table, level=ci_level), figures / "sites.png", figures / "sites.pdf")
    return table
