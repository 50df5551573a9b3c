"""Per-site evaluation of a multi-centre study (``cohort.site``).

The site of every subject comes from ``folds/splits.tsv`` (its ``site`` column, written by
split_folds from the sample sheet) and rides along in ``tables/predictions.tsv``
(:func:`oncoflow.metrics.evaluate.add_sites`). Per site and model:

- ``cv``: the site's internal patients in the pooled out-of-fold predictions (repeat 0), each
  predicted by the fold model that did not train on it. Under ``leave_one_site_out`` that model
  never saw the site at all; under ``stratified`` the site's other patients were in its training.
- each external cohort: the site's external patients, scored by the fold-model ensemble.

AUC with its CI (DeLong or bootstrap, as configured), n and positives. A site with a single class
has no AUC (NaN, with a note); a small site's CI is wide, and the table shows it rather than hiding
the site.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from oncoflow import atomic
from oncoflow.metrics.evaluate import cohort_predictions
from oncoflow.metrics.summary import summarize
from oncoflow.metrics.tables import to_markdown

SITE_COLUMNS = ["model", "cohort", "site", "n", "n_pos", "auc", "auc_ci_low", "auc_ci_high", "note"]


def metrics_by_site(pooled: pd.DataFrame, *, ci_method: str = "delong", level: float = 0.95,
                    n_boot: int = 2000, seed: int | None = 0) -> pd.DataFrame:
    """metrics_by_site.tsv: one row per model, cohort and site, from the pooled predictions
    (:func:`oncoflow.metrics.evaluate.pool_predictions` with a ``site`` column, or
    predictions.tsv read back)."""
    if "site" not in pooled.columns:
        raise ValueError("the predictions carry no site column: set cohort.site in the config")
    sites = pooled.drop_duplicates("subject").set_index("subject")["site"].astype(str)
    rows = []
    for model, cohort, frame in cohort_predictions(pooled):
        frame = frame.assign(site=frame["subject"].map(sites))
        for site, part in frame.groupby("site", sort=True):
            y, p = part["y_true"].to_numpy(dtype=int), part["probability"].to_numpy(dtype=float)
            s = summarize(y, p, ci_method=ci_method, level=level, n_boot=n_boot, seed=seed)
            note = "; ".join(n for n in s["note"].split("; ") if n.startswith("auc"))
            rows.append({"model": model, "cohort": cohort, "site": site, "n": int(s["n"]),
                         "n_pos": int(s["n_pos"]), "auc": s["auc"], "auc_ci_low": s["auc_ci_low"],
                         "auc_ci_high": s["auc_ci_high"], "note": note})
    return pd.DataFrame(rows, columns=SITE_COLUMNS)


def write_site_tables(table: pd.DataFrame, tsv: str | Path, md: str | Path) -> None:
    atomic.write_table(table, tsv, sep="\t", index=False, float_format="%.4f")
    view = table.assign(**{c: [f"{v:.3f}" if np.isfinite(v) else "NA" for v in table[c]]
                           for c in ("auc", "auc_ci_low", "auc_ci_high")})
    atomic.write_text(md, to_markdown(view.rename(columns={"n_pos": "positives"})))
