"""Benchmark table: the in-workflow tumor segmenters (issue #26) on the real TCGA LGG cohort, read
from a finished run of the segment rules (benchmarks/overlays/lgg_segment.yaml; nothing is
trained here). Per fold: the test patients' Dice (mean, median, range), median HD95, detection
rate and mean volume difference (oncoflow.segment.jobs.segmentation_summary, the function the
segmentation_summary rule calls) and the CPU seconds of Snakemake's benchmark files: the
segmenter's training (rule tumor_segmenter) and, per predicted_tumor_mask job that has one, the
median CPU seconds of a prediction.
With --baseline, also the study's baseline model (oncoflow.baseline: log tumor volume and tumor
intensity statistics, L2 logistic regression per fold) on the same folds with its features from
each patient's cross-fitted predicted mask (the fold of --folds that tests it) beside those from the
manual mask (the workflow's baseline/features.tsv): pooled test AUC with 95% DeLong CI and the
paired DeLong test. With --ceiling SIZE..., the resolution ceiling: each patient's manual mask
sampled onto the segmenter's slices at SIZE px and mapped back (oncoflow.segment.slices, as a
prediction is), scored against itself (a perfect network's Dice at that size).

    .venv/bin/python benchmarks/bench_segment_lgg.py results/lgg_radiogenomics --folds 0 1 2 3 4 [--baseline] [--ceiling 64 128]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from oncoflow.segment.jobs import segmentation_summary


def cpu_seconds(files: list[Path]) -> tuple[float, float]:
    """(summed cpu_time, summed wall seconds) of Snakemake benchmark files."""
    tables = [pd.read_csv(f, sep="\t") for f in files]
    return sum(float(t["cpu_time"].iloc[0]) for t in tables), sum(float(t["s"].iloc[0]) for t in tables)


def fold_table(results: Path, folds: list[int], out: Path) -> pd.DataFrame:
    tables = [results / f"segment/fold{k}/segmentation.tsv" for k in folds]
    summary = segmentation_summary(tables, out).set_index("fold")
    rows = []
    for k in folds:
        s = summary.loc[str(k)]
        train_cpu, train_wall = cpu_seconds([results / f"benchmarks/tumor_segmenter/fold{k}.tsv"])
        subjects = pd.read_csv(results / f"segment/fold{k}/segmentation.tsv", sep="\t")["subject"]
        jobs = [results / f"benchmarks/predicted_tumor_mask/fold{k}_{subject}.tsv" for subject in subjects]
        predict_cpu = [cpu_seconds([f])[0] for f in jobs if f.exists()]
        rows.append({"fold": k, "n": int(s["scored"]), "dice_mean": s["dice_mean"], "dice_median": s["dice_median"],
                     "dice_min": s["dice_min"], "dice_max": s["dice_max"], "hd95_median_mm": s["hd95_median_mm"],
                     "detected": s["detected"], "volume_difference_mean_ml": s["volume_difference_mean_ml"],
                     "train_cpu_s": train_cpu, "train_wall_s": train_wall,
                     "predict_jobs": len(predict_cpu), "predict_cpu_s": float(np.median(predict_cpu)) if predict_cpu else np.nan})
    pooled = summary.loc["cross-fitted"]
    rows.append({"fold": "all (each patient once)", "n": int(pooled["scored"]), "dice_mean": pooled["dice_mean"],
                 "dice_median": pooled["dice_median"], "dice_min": pooled["dice_min"], "dice_max": pooled["dice_max"],
                 "hd95_median_mm": pooled["hd95_median_mm"], "detected": pooled["detected"],
                 "volume_difference_mean_ml": pooled["volume_difference_mean_ml"],
                 "train_cpu_s": sum(r["train_cpu_s"] for r in rows), "train_wall_s": sum(r["train_wall_s"] for r in rows),
                 "predict_jobs": sum(r["predict_jobs"] for r in rows), "predict_cpu_s": np.nan})
    return pd.DataFrame(rows)


def baseline_aucs(results: Path, folds: list[int], modalities: list[str]) -> str:
    """The baseline's pooled test AUC over ``folds`` with manual-mask and predicted-mask features."""
    from oncoflow.baseline.features import subject_features
    from oncoflow.baseline.model import fit_baseline_fold
    from oncoflow.metrics.roc import auc_ci, delong_test

    splits = pd.read_csv(results / "folds/splits.tsv", sep="\t", dtype={"subject": str})
    manual = pd.read_csv(results / "baseline/features.tsv", sep="\t", dtype={"subject": str})
    tested = splits[splits["fold"].isin(folds) & (splits["role"] == "test")]
    rows = []
    for subject, fold in zip(tested["subject"], tested["fold"], strict=True):
        folder = results / "subjects" / subject
        rows.append(subject_features(subject, {m: folder / "brain" / f"{m}.nii.gz" for m in modalities},
                                     folder / "brain/brain_mask.nii.gz",
                                     results / f"segment/fold{fold}/masks/{subject}.nii.gz"))
    predicted = pd.concat(rows, ignore_index=True)
    scores = {}
    for name, features in (("manual", manual), ("predicted", predicted)):
        preds = pd.concat([fit_baseline_fold(features, splits, k, seed=42)[0] for k in folds])
        scores[name] = preds[preds["role"] == "test"].set_index("subject").sort_index()
    y = scores["manual"]["y_true"].to_numpy()
    lines = ["| baseline features from | pooled test AUC (95% DeLong CI) |", "|---|---|"]
    for name, s in scores.items():
        auc, low, high = auc_ci(y, s["probability"].to_numpy())
        lines.append(f"| {name} masks | {auc:.3f} ({low:.3f}-{high:.3f}) |")
    z, p = delong_test(y, scores["predicted"]["probability"].to_numpy(), scores["manual"]["probability"].to_numpy())
    lines.append(f"\npaired DeLong, predicted vs manual: z = {z:.2f}, p = {p:.3f} (n = {len(y)}, {int(y.sum())} positive)")
    return "\n".join(lines)


def resolution_ceiling(results: Path, size: int, margin_mm: float = 5.0) -> str:
    """Dice of every patient's manual mask after the round trip through ``size`` px slices."""
    import nibabel as nib

    from oncoflow.segment.slices import load_slices, to_volume

    dice = []
    for folder in sorted((results / "subjects").iterdir()):
        mask = folder / "coreg/tumor_mask.nii.gz"
        slices = load_slices(folder.name, {"flair": folder / "brain/flair.nii.gz"}, folder / "brain/brain_mask.nii.gz",
                             mask, size, margin_mm)
        back = to_volume(slices.tumor.astype(np.float32), slices.grid) >= 0.5
        manual = np.asarray(nib.as_closest_canonical(nib.load(mask)).dataobj) > 0.5
        dice.append(2 * (back & manual).sum() / (back.sum() + manual.sum()))
    d = np.array(dice)
    return (f"ceiling at {size} px: {len(d)} patients, Dice mean {d.mean():.3f} median {np.median(d):.3f} "
            f"range {d.min():.3f}-{d.max():.3f}")


def markdown(table: pd.DataFrame) -> str:
    head = ("| fold | test patients | Dice mean | Dice median | Dice range | HD95 median (mm) | detected | "
            "volume difference, mean (ml) | training CPU s (wall s) | prediction CPU s, median (rule jobs) |")
    lines = [head, "|" + "---|" * 10]
    for r in table.itertuples():
        predict = "-" if np.isnan(r.predict_cpu_s) else f"{r.predict_cpu_s:.1f}"
        lines.append(f"| {r.fold} | {r.n} | {r.dice_mean:.3f} | {r.dice_median:.3f} | {r.dice_min:.3f}-{r.dice_max:.3f} "
                     f"| {r.hd95_median_mm:.1f} | {r.detected:.0%} | {r.volume_difference_mean_ml:+.1f} "
                     f"| {r.train_cpu_s:.0f} ({r.train_wall_s:.0f}) | {predict} ({r.predict_jobs}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the study's results folder (results/lgg_radiogenomics)")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--baseline", action="store_true", help="also the baseline's AUC, predicted vs manual masks")
    parser.add_argument("--modalities", nargs="+", default=["t1", "flair", "t1ce"],
                        help="the baseline's modalities (ingest.modalities order)")
    parser.add_argument("--ceiling", type=int, nargs="*", default=[], help="sizes (px) for the resolution ceiling")
    parser.add_argument("--out", type=Path, default=None, help="summary TSV (default: <results>/segment/summary.tsv)")
    args = parser.parse_args()
    table = fold_table(args.results, args.folds, args.out or args.results / "segment/summary.tsv")
    print(markdown(table))
    if args.baseline:
        print(baseline_aucs(args.results, args.folds, args.modalities))
    for size in args.ceiling:
        print(resolution_ceiling(args.results, size))


if __name__ == "__main__":
    main()
