"""Benchmark: frozen deep features of the installed brain-extraction networks (radiomics.variants
hdbet / deepbet) on the real TCGA LGG cohort, against the 16-feature baseline, with the package
functions the workflow's rules call; optionally the CPU time of fine-tuning one fold from HD-BET.

    .venv/bin/python benchmarks/bench_lgg_transfer.py --out /tmp/lgg_transfer   # prints the table
    .venv/bin/python benchmarks/bench_lgg_transfer.py --out /tmp/lgg_transfer --variants hdbet --l2 0.01
                                           # frozen features + L2 logistic (features saved by a first run)

Steps (as the study `lgg_radiogenomics` runs them, without Snakemake): the sample sheet
(oncoflow.cohorts.lgg_tcga), per patient the foreground mask (preprocess brain_extraction: none),
the tumor crop (crop_subject, the study's crop: 64 px, 10 mm margin), the baseline features and,
per variant, the encoder's features pooled in the tumor (oncoflow.radiomics.deep); then
make_folds (5 folds, seed 42, inner validation 25%, cv.repeats) and per fold the LASSO rad-score
(fit_fold_model, fitted on the fold's train + val patients, val cross-fitted) and the baseline
(fit_baseline_fold). Pooled test AUC with DeLong CI per repeat, mean +- SD over repeats, paired
DeLong against the baseline per repeat, calibration after each fold's logistic recalibration on
its (cross-fitted) inner-validation patients, CPU seconds per step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

MODALITIES = ["t1", "flair", "t1ce"]


def prepare(data: Path, out: Path, limit: int | None) -> tuple[pd.DataFrame, dict[str, Path], pd.DataFrame]:
    """(sheet with label, crops, baseline features) of every patient with a COCCluster."""
    from oncoflow.baseline.features import subject_features
    from oncoflow.cohorts.lgg_tcga import write_lgg_tcga_sheet
    from oncoflow.crop.tumor_crop import CropSpec, crop_subject
    from oncoflow.preprocess.masks import head_mask_array

    sheet = pd.read_csv(write_lgg_tcga_sheet(data, out / "samples.tsv"), sep="\t", dtype=str, keep_default_na=False)
    sheet = sheet[sheet["coc2"] != ""].copy()
    sheet["label"] = sheet["coc2"].astype(int)
    if limit:
        sheet = pd.concat([g.head(limit // 2) for _, g in sheet.groupby("label")], ignore_index=True)
    crops, baseline = {}, []
    for subject in sheet["subject"]:
        folder = data / subject
        images = {m: folder / f"{m}.nii.gz" for m in MODALITIES}
        brain = out / "masks" / f"{subject}.nii.gz"
        if not brain.is_file():
            ref = nib.load(images["flair"])
            mask = head_mask_array(np.asarray(ref.get_fdata(), np.float32), tuple(float(z) for z in ref.header.get_zooms()[:3]))
            brain.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(mask.astype(np.uint8), ref.affine), brain)
        crops[subject] = out / "crops" / f"{subject}.npz"
        if not crops[subject].is_file():
            crops[subject].parent.mkdir(parents=True, exist_ok=True)
            crop_subject(subject, images, brain, folder / "tumor_mask.nii.gz", crops[subject], CropSpec(size=64, margin_mm=10))
        baseline.append(subject_features(subject, images, brain, folder / "tumor_mask.nii.gz"))
    return sheet, crops, pd.concat(baseline, ignore_index=True)


def recalibrated(preds: pd.DataFrame) -> pd.DataFrame:
    """Test rows with each fold's logistic recalibration (fitted on its inner-validation rows)."""
    from oncoflow.metrics.recalibration import apply_recalibration, fit_recalibration

    rows = []
    for _, part in preds.groupby("fold"):
        val, test = part[part["role"] == "val"], part[part["role"] == "test"].copy()
        a, b, _ = fit_recalibration(val["y_true"].to_numpy(), val["probability"].to_numpy())
        test["risk"] = apply_recalibration(test["probability"].to_numpy(), a, b)
        rows.append(test)
    return pd.concat(rows)


def l2_arm(sheet: pd.DataFrame, base_feats: pd.DataFrame, features: Path, repeats: int, c: float) -> None:
    """Frozen features + L2 logistic regression (a pre-specified C, nothing tuned), fitted per fold
    on its train + val patients after standardisation on them; test AUC per repeat against the
    baseline's (paired DeLong)."""
    from sklearn.linear_model import LogisticRegression

    from oncoflow.baseline.model import fit_baseline_fold
    from oncoflow.metrics.roc import auc_ci, delong_test
    from oncoflow.train.folds import make_folds

    feats = pd.read_csv(features, sep="\t", dtype={"subject": str}).set_index("subject")
    splits = make_folds(sheet.assign(cohort="train")[["subject", "cohort", "label"]], label="label", folds=5,
                        seed=42, val_fraction=0.25, repeats=repeats)
    if "repeat" not in splits.columns:
        splits["repeat"] = 0
    rows = []
    for fold in sorted(splits["fold"].unique()):
        t = time.process_time()
        part = splits[splits["fold"] == fold].set_index("subject")
        fit, test = part.index[part["role"].isin(["train", "val"])], part.index[part["role"] == "test"]
        x = feats.loc[fit].to_numpy()
        mean, sd = x.mean(0), np.where(x.std(0) > 0, x.std(0), 1.0)
        clf = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / sd, part.loc[fit, "label"])
        p = clf.predict_proba((feats.loc[test].to_numpy() - mean) / sd)[:, 1]
        cpu = time.process_time() - t
        b, _ = fit_baseline_fold(base_feats, splits, fold, seed=42 + fold)
        rows.append(pd.DataFrame({"repeat": part["repeat"].iloc[0], "y": part.loc[test, "label"].to_numpy(), "l2": p,
                                  "baseline": b.set_index("subject").loc[test, "probability"].to_numpy(), "cpu": cpu}))
    for r, g in pd.concat(rows).groupby("repeat"):
        a, base = auc_ci(g["y"], g["l2"]), auc_ci(g["y"], g["baseline"])
        _, pval = delong_test(g["y"].to_numpy(), g["l2"].to_numpy(), g["baseline"].to_numpy())
        print(f"repeat {r}: {features.stem} + L2 (C {c:g}) AUC {a[0]:.3f} ({a[1]:.3f}-{a[2]:.3f}); baseline "
              f"{base[0]:.3f} ({base[1]:.3f}-{base[2]:.3f}); DeLong p {pval:.2f}; fit CPU per fold {g['cpu'].mean():.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/lgg_tcga"))
    parser.add_argument("--out", type=Path, required=True, help="work folder (crops, features; reused)")
    parser.add_argument("--variants", default="hdbet,deepbet")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="balanced subset of this many patients")
    parser.add_argument("--finetune-folds", type=int, default=0, help="also fine-tune this many folds from HD-BET")
    parser.add_argument("--depth", type=int, default=16, help="crop.depth (the encoder window's slices)")
    parser.add_argument("--l2", type=float, default=None, help="only the L2 arm with this C, on saved features")
    args = parser.parse_args()

    from oncoflow.baseline.model import fit_baseline_fold
    from oncoflow.metrics.recalibration import calibration_statistics
    from oncoflow.metrics.roc import auc_ci, delong_test
    from oncoflow.radiomics.deep import extract_deep_features
    from oncoflow.radiomics.models import fit_fold_model
    from oncoflow.radiomics.selection import SelectionSettings
    from oncoflow.train.folds import make_folds

    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.process_time()
    sheet, crops, base_feats = prepare(args.data, args.out, args.limit)
    print(f"{len(sheet)} patients ({int(sheet['label'].sum())} COCCluster 2); crops + baseline features "
          f"{time.process_time() - t0:.0f} s CPU")
    if args.l2 is not None:
        for variant in [v for v in args.variants.split(",") if v]:
            l2_arm(sheet, base_feats, args.out / f"features_{variant}_d{args.depth}.tsv", args.repeats, args.l2)
        return
    splits = make_folds(sheet.assign(cohort="train")[["subject", "cohort", "label"]], label="label", folds=5,
                        seed=42, val_fraction=0.25, repeats=args.repeats)
    if "repeat" not in splits.columns:
        splits["repeat"] = 0
    indexed = sheet.set_index("subject", drop=False)
    preds = {"baseline": []}
    cpu = {}
    for fold in sorted(splits["fold"].unique()):
        p, _ = fit_baseline_fold(base_feats, splits, fold, seed=42 + fold)
        preds["baseline"].append(p.assign(model="baseline"))
    for variant in [v for v in args.variants.split(",") if v]:
        path = args.out / f"features_{variant}_d{args.depth}.tsv"
        t = time.process_time()
        if not path.is_file():
            extract_deep_features(crops, variant, MODALITIES, depth=args.depth).to_csv(path, sep="\t", index=False)
        cpu[f"{variant} features (all patients)"] = time.process_time() - t
        feats = pd.read_csv(path, sep="\t", dtype={"subject": str})
        name = f"radiomics_{variant}"
        preds[name] = []
        t = time.process_time()
        for fold in sorted(splits["fold"].unique()):
            p, coefs, _ = fit_fold_model(name, fold, splits, indexed, [], SelectionSettings(seed=42), feats)
            preds[name].append(p)
        cpu[f"{name} fit (per fold)"] = (time.process_time() - t) / splits["fold"].nunique()
    print("\nCPU seconds:", {k: round(v, 1) for k, v in cpu.items()})

    for name, frames in preds.items():  # kept beside the features (a table step can be redone from them)
        pd.concat(frames).to_csv(args.out / f"predictions_{name}_r{args.repeats}.tsv", sep="\t", index=False)
    repeat_of = splits.groupby("fold")["repeat"].first()
    table = {m: pd.concat(v).assign(repeat=lambda d: d["fold"].map(repeat_of)) for m, v in preds.items()}
    base_test = table["baseline"][table["baseline"]["role"] == "test"].set_index(["repeat", "subject"])
    print("\n| model | pooled AUC repeat 0 (95% CI) | AUC per repeat | mean +- SD | DeLong vs baseline (per repeat: delta, p) | "
          "recalibrated: intercept, slope, Brier (repeat 0) |\n|---|---|---|---|---|---|")
    for name, frame in table.items():
        test = frame[frame["role"] == "test"]
        aucs, deltas = [], []
        for r, part in test.groupby("repeat"):
            a, lo, hi = auc_ci(part["y_true"], part["probability"])
            aucs.append((a, lo, hi))
            if name != "baseline":
                b = base_test.loc[r].loc[part["subject"], "probability"].to_numpy()
                _, pval = delong_test(part["y_true"].to_numpy(), part["probability"].to_numpy(), b)
                deltas.append(f"{a - auc_ci(part['y_true'], b)[0]:+.3f}, p={pval:.2f}")
        rec = recalibrated(frame[frame["repeat"] == 0])
        cal = calibration_statistics(rec["y_true"].to_numpy(), rec["risk"].to_numpy())
        mean = statistics.mean(a for a, _, _ in aucs)
        sd = statistics.stdev(a for a, _, _ in aucs) if len(aucs) > 1 else float("nan")
        print(f"| {name} | {aucs[0][0]:.3f} ({aucs[0][1]:.3f}-{aucs[0][2]:.3f}) | "
              f"{', '.join(f'{a:.3f}' for a, _, _ in aucs)} | {mean:.3f} +- {sd:.3f} | {'; '.join(deltas) or '-'} | "
              f"{cal['cal_intercept']:.2f}, {cal['cal_slope']:.2f}, {cal['brier']:.3f} |")

    if args.finetune_folds:
        from oncoflow.train.loop import TrainConfig, train_fold

        for fold in range(args.finetune_folds):
            for init in ("hdbet", "scratch"):
                cfg = TrainConfig(architecture="hdbet_encoder_3d", modalities=MODALITIES, init=init, epochs=20,
                                  batch_size=8, lr=1e-4, patience=6, depth=args.depth, device="cpu")
                t = time.process_time()
                p = train_fold(cfg, crops, splits, out_dir=args.out / f"finetune_{init}" / f"fold{fold}",
                               model_name=f"hdbet_encoder_3d_{init}", fold=fold)
                test = p[p["role"] == "test"]
                print(f"fine-tune from {init}, fold {fold}: test AUC {auc_ci(test['y_true'], test['probability'])[0]:.3f} "
                      f"({len(test)} patients), {time.process_time() - t:.0f} s CPU")


if __name__ == "__main__":
    main()
