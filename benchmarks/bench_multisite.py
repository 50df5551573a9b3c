"""Benchmark (issue #16): per-site AUCs on the real TCGA LGG cohort, leave-one-site-out beside the
pooled stratified cross-validation, from the fold predictions of two runs of the workflow.

    python benchmarks/bench_multisite.py STRATIFIED_RESULTS LOSO_RESULTS MODEL [MODEL ...]

STRATIFIED_RESULTS: results/<study> of a stratified 5-fold run (repeat 0, folds 0-4, is used);
LOSO_RESULTS: results/<study> of the leave-one-site-out run (benchmarks/lgg_multisite.yaml), whose
folds/splits.tsv names each patient's site. The stratified run's patients get the same sites (a
patient's site does not depend on the split). Prints a Markdown table: per model, the pooled AUC
and the per-site AUC (95% DeLong CI, n, positives) under each scheme, with the same package
functions the workflow's evaluate_models and evaluate_sites rules call.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from oncoflow.metrics.evaluate import add_sites, evaluate_pooled, pool_predictions, subject_sites
from oncoflow.metrics.sites import metrics_by_site


def scheme_tables(results: Path, models: list[str], folds: list[int] | None,
                  sites: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    files = [p for m in models for p in sorted((results / "models" / m).glob("fold*/predictions.tsv"))
             if folds is None or int(p.parent.name[4:]) in folds]
    preds = pd.concat([pd.read_csv(p, sep="\t") for p in files], ignore_index=True)
    pooled = pool_predictions(add_sites(preds, sites))
    return evaluate_pooled(pooled), metrics_by_site(pooled)


def cell(row: pd.Series) -> str:
    if pd.isna(row["auc"]):
        return f"NA (n {int(row['n'])}, {int(row['n_pos'])} pos)"
    return f"{row['auc']:.3f} ({row['auc_ci_low']:.2f}-{row['auc_ci_high']:.2f})"


def main(stratified: Path, loso: Path, models: list[str]) -> str:
    splits = pd.read_csv(loso / "folds/splits.tsv", sep="\t", dtype={"site": str}, keep_default_na=False)
    sites = subject_sites(splits)
    lines = ["| model | scheme | pooled AUC (95% CI), n | " + " | ".join(
        f"{s} (n {n}, {p} pos)" for s, n, p in
        splits[splits["fold"] == 0].groupby("site")["label"].agg(["size", "sum"]).itertuples()) + " |"]
    site_names = sorted(sites.unique())
    lines.append("|" + "---|" * (3 + len(site_names)))
    for model in models:
        for name, results, folds in (("stratified 5-fold CV (repeat 0)", stratified, list(range(5))),
                                     ("leave-one-site-out", loso, None)):
            metrics, by_site = scheme_tables(results, [model], folds, sites)
            cv = metrics[metrics["cohort"] == "cv"].iloc[0]
            per = by_site[by_site["cohort"] == "cv"].set_index("site")
            cells = [cell(per.loc[s]) if s in per.index else "trains only" for s in site_names]
            lines.append(f"| `{model}` | {name} | {cell(cv)}, n {int(cv['n'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]))
