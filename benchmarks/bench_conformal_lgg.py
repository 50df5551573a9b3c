"""Benchmark (issue #25): coverage of the conformal prediction sets on the real TCGA LGG cohort
(../shared/data/lgg_tcga, 110 patients, COCCluster 2 vs rest), per cohort and per site (the TCGA
institution code of the patient ID), for the baseline model (tumor volume and tumor-vs-brain
intensity z-scores, L2 logistic per fold), whose inner-validation patients are only predicted, so
they may calibrate the sets.

    python benchmarks/bench_conformal_lgg.py [REPEATS]

Runs the package functions the workflow's split_folds, fit_baseline_model and evaluate_models
rules call: make_folds (stratified 5-fold, val_fraction 0.25, seed 42 + repeat), subject_features
on the dataset's co-registered images (the brain: the non-zero FLAIR voxels, as the images are
skull-stripped crops of the exam), fit_baseline_fold, pool_predictions (logistic recalibration on
the validation patients), add_prediction_sets and coverage_table. Prints a Markdown table per
error rate and set construction (pooled over the repeats, each patient once per repeat).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from oncoflow.baseline.features import subject_features
from oncoflow.baseline.model import fit_baseline_fold
from oncoflow.metrics.conformal import add_prediction_sets, coverage_table
from oncoflow.metrics.evaluate import pool_predictions
from oncoflow.train.folds import make_folds

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lgg_tcga"


def features(tmp: Path) -> pd.DataFrame:
    rows = []
    for folder in sorted(p for p in DATA.iterdir() if p.is_dir()):
        flair = nib.load(folder / "flair.nii.gz")
        brain = tmp / f"{folder.name}_brain.nii.gz"
        nib.save(nib.Nifti1Image((np.asarray(flair.dataobj) > 0).astype(np.uint8), flair.affine), brain)
        images = {m: folder / f"{m}.nii.gz" for m in ("t1", "t1ce", "flair")}
        rows.append(subject_features(folder.name, images, brain, folder / "tumor_mask.nii.gz"))
    return pd.concat(rows, ignore_index=True)


def main(repeats: int) -> str:
    clinical = pd.read_csv(DATA / "data.csv", dtype={"Patient": str})
    samples = pd.DataFrame({"subject": clinical["Patient"], "cohort": "train",
                            "label": (clinical["COCCluster"] == 2).astype(int),
                            "site": clinical["Patient"].str.split("_").str[1]})
    with tempfile.TemporaryDirectory() as tmp:
        feats = features(Path(tmp))
    preds = []
    for repeat in range(repeats):
        splits = make_folds(samples, label="label", folds=5, seed=42 + repeat, val_fraction=0.25)
        for fold in sorted(splits["fold"].unique()):
            p, _ = fit_baseline_fold(feats, splits, int(fold), seed=42 + repeat)
            preds.append(p.assign(fold=int(fold) + 5 * repeat))
    pooled = pool_predictions(pd.concat(preds, ignore_index=True), recalibration={"baseline": "logistic"})
    pooled = pooled.assign(site=pooled["subject"].map(samples.set_index("subject")["site"]), repeat=0)
    val = pooled[pooled["role"] == "val"]
    lines = [f"LGG baseline, {repeats} repeat(s) of 5-fold CV; calibration patients per fold: "
             f"{val.groupby('fold').size().median():.0f} (median), positives "
             f"{val.groupby('fold')['y_true'].sum().median():.0f}", ""]
    for error_rate in (0.1, 0.2):
        for by_class in (True, False):
            sets, _ = add_prediction_sets(pooled, error_rate, by_class=by_class)
            table = coverage_table(sets, error_rate, by_class=by_class)
            lines += [f"### error rate {error_rate}, {'by class' if by_class else 'marginal'}", "",
                      "| site | n | coverage (95% CI) | negatives | positives | uncertain | empty | note |",
                      "|---|---|---|---|---|---|---|---|"]
            for _, r in table.iterrows():
                lines.append(f"| {r['site']} | {r['n']} | {r['coverage']:.3f} ({r['coverage_ci_low']:.3f}-"
                             f"{r['coverage_ci_high']:.3f}) | {r['coverage_negative']:.3f} | "
                             f"{r['coverage_positive']:.3f} | {r['uncertain']:.3f} | {r['empty']:.3f} | {r['note']} |")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: this benchmark needs the shared LGG data")
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
