"""Leave-one-site-out vs. pooled stratified CV of the feature models on the real TCGA LGG cohort,
with and without ComBat harmonisation (issue #16; rows of benchmarks/multisite.md).

Calls the functions the workflow's rules call (oncoflow.train.folds.make_folds = split_folds,
oncoflow.baseline.model.fit_baseline_fold = fit_baseline_model, oncoflow.radiomics.models.fit_fold
= fit_radiomics_model, with the lgg_radiomics selection settings; oncoflow.metrics.roc.auc_ci for
the DeLong intervals) on feature tables made by the workflow's extraction:

    python benchmarks/bench_multisite_harmonisation.py --sheet data/lgg_tcga/samples.tsv \
        --baseline results/lgg_radiogenomics/baseline/features.tsv \
        --radiomics results/lgg_radiomics/radiomics/original/features.tsv --out <folder>

Writes <folder>/predictions.tsv (every test prediction) and <folder>/aucs.tsv (the table).
``--site-effects`` instead writes <folder>/site_effects.tsv: per feature table, how many features
differ between the four large sites (Kruskal-Wallis p < 0.05) raw and after one ComBat fitted on
all patients (descriptive only: how strong the site effects are, not a validation).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from oncoflow.baseline.model import fit_baseline_fold
from oncoflow.harmonisation import HarmonisationSettings
from oncoflow.metrics.roc import auc_ci
from oncoflow.radiomics.models import fit_fold
from oncoflow.radiomics.selection import SelectionSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())["properties"]


def schema_default(section: str, key: str):
    return SCHEMA[section]["properties"][key]["default"]


def settings(method: str) -> HarmonisationSettings | None:
    return HarmonisationSettings.from_config({
        "method": method, "unseen_site": schema_default("harmonisation", "unseen_site"),
        "min_site_patients": schema_default("harmonisation", "min_site_patients")})


def site_effects(tables: dict[str, pd.DataFrame], sites: pd.Series) -> pd.DataFrame:
    from scipy.stats import kruskal

    from oncoflow.harmonisation import harmonise

    rows = []
    for name, table in tables.items():
        x = table.set_index("subject").astype(float)
        x = x.loc[:, x.notna().all() & (x.std() > 0)]
        site = sites.loc[x.index]
        big = site[site.isin(["CS", "DU", "FG", "HT"])].index
        harmonised, _ = harmonise(x, site, list(x.index), settings("combat"))
        for label, frame in (("raw", x), ("combat", harmonised)):
            p = [kruskal(*[frame.loc[big][c][site.loc[big] == s] for s in ("CS", "DU", "FG", "HT")]).pvalue
                 for c in frame.columns]
            rows.append({"features": name, "values": label, "n_features": len(p),
                         "site_differs_p05": int((np.array(p) < 0.05).sum()),
                         "median_p": float(np.median(p))})
    return pd.DataFrame(rows)


def main() -> None:
    from oncoflow.train.folds import make_folds

    ap = argparse.ArgumentParser()
    ap.add_argument("--sheet", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--radiomics", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--site-effects", action="store_true")
    args = ap.parse_args()
    config = yaml.safe_load((ROOT / "config/studies/lgg_radiomics.yaml").read_text())
    cv = config["cv"]
    sheet = pd.read_csv(args.sheet, sep="\t", dtype=str, keep_default_na=False).set_index("subject", drop=False)
    sheet["y"] = (sheet[config["study"]["label"]] == str(config["study"]["positive"])).astype(int)
    base = sheet[["subject", "cohort", "y", "site"]].reset_index(drop=True)
    splits = {
        "stratified": make_folds(base, label="y", folds=cv["folds"], seed=cv["seed"], val_fraction=cv["val_fraction"],
                                 site="site"),
        "leave_one_site_out": make_folds(base, label="y", folds=cv["folds"], seed=cv["seed"],
                                         val_fraction=cv["val_fraction"], site="site", scheme="leave_one_site_out",
                                         min_site_size=schema_default("cv", "min_site_size")),
    }
    baseline = pd.read_csv(args.baseline, sep="\t", dtype={"subject": str})
    radiomics = pd.read_csv(args.radiomics, sep="\t", dtype={"subject": str})
    args.out.mkdir(parents=True, exist_ok=True)
    if args.site_effects:
        effects = site_effects({"baseline": baseline, "radiomics_original": radiomics}, sheet["site"])
        effects.to_csv(args.out / "site_effects.tsv", sep="\t", index=False, float_format="%.3g")
        print(effects.to_string())
        return
    selection = SelectionSettings.from_config(dict(config["radiomics"]["selection"]), seed=int(cv["seed"]))
    preds, timing = [], []
    for scheme, table in splits.items():
        for method in ("none", "combat"):
            for fold in sorted(table["fold"].unique()):
                t0 = time.perf_counter()
                p, _ = fit_baseline_fold(baseline, table, int(fold), seed=int(cv["seed"]),
                                         harmonisation=settings(method))
                t1 = time.perf_counter()
                q, _ = fit_fold("radiomics_original", int(fold), table, sheet, [], selection, radiomics,
                                fit_validation=True, harmonisation=settings(method))
                t2 = time.perf_counter()
                timing.append({"scheme": scheme, "harmonisation": method, "fold": fold,
                               "baseline_s": t1 - t0, "radiomics_s": t2 - t1})
                for frame in (p, q):
                    test = frame[frame["role"] == "test"].assign(scheme=scheme, harmonisation=method)
                    preds.append(test)
                print(scheme, method, fold, f"{t1 - t0:.1f}s {t2 - t1:.1f}s", flush=True)
    pred = pd.concat(preds, ignore_index=True)
    pred["site"] = pred["subject"].map(sheet["site"])
    args.out.mkdir(parents=True, exist_ok=True)
    pred.to_csv(args.out / "predictions.tsv", sep="\t", index=False, float_format="%.6f")
    pd.DataFrame(timing).to_csv(args.out / "timing.tsv", sep="\t", index=False, float_format="%.2f")
    rows = []
    for (scheme, method, model), part in pred.groupby(["scheme", "harmonisation", "model"]):
        groups = [("pooled", part)] + [(s, g) for s, g in part.groupby("site")]
        for site, g in groups:
            y, s = g["y_true"].to_numpy(), g["probability"].to_numpy()
            a, lo, hi = auc_ci(y, s) if 0 < y.sum() < len(y) else (np.nan, np.nan, np.nan)
            rows.append({"scheme": scheme, "harmonisation": method, "model": model, "site": site, "n": len(y),
                         "positives": int(y.sum()), "auc": a, "ci_low": lo, "ci_high": hi})
    aucs = pd.DataFrame(rows)
    aucs.to_csv(args.out / "aucs.tsv", sep="\t", index=False, float_format="%.3f")
    print(aucs.to_string())


if __name__ == "__main__":
    main()
