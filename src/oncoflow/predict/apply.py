"""Applying a bundle's models to new subjects (rules predict_new_subjects, evaluate_new_subjects).

Each model is an ensemble of its fold models: per subject the mean probability over folds and its
SD, the study's threshold (mean of the fold thresholds, each chosen on that fold's inner-validation
patients), the class, the recalibrated risk (mean over folds of each fold's recalibration map) and,
where the bundle carries conformal thresholds, the prediction set (majority vote of the fold models'
sets; oncoflow.metrics.conformal.majority_sets).
Late fusion combines, fold by fold, that fold's base-model probabilities (mean, or the fold's
stacking model), then averages over folds like any model. Radiomics, clinical and combined fold
models (oncoflow.radiomics.saved) read the new subjects' features, extracted with the bundle's
settings (checked against the training extraction), and the new sheet's clinical columns (blanks
get the training fill). Nothing is fitted on the new subjects.
Subjects without a tumor mask are scored from whole-brain crops (crop.region brain) or, where the
bundle carries the study's fold segmenters, fold by fold from the crop of that fold's predicted
mask (oncoflow.segment.new_subjects); subjects whose QC is flagged, whose predicted mask is
implausible, or who have no mask and no segmenter, are listed with the reason and no score.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oncoflow.metrics.conformal import majority_sets
from oncoflow.metrics.recalibration import apply_recalibration
from oncoflow.metrics.roc import auc_ci
from oncoflow.predict.bundle import apply_stacker
from oncoflow.predict.manifest import PreparationMismatch, check_preparation, load_manifest
from oncoflow.radiomics.saved import SavedModelError, apply_saved_model, read_saved_model

PER_FOLD_COLUMNS = ["subject", "model", "fold", "probability"]


def cnn_fold_probabilities(bundle: Path, manifest: dict[str, Any], crops: dict[str, Path],
                           given: dict[str, Any], threads: int = 1,
                           fold_crops: dict[int, dict[str, Path]] | None = None) -> pd.DataFrame:
    """Every CNN fold model's patient probability for each subject's crop; ``fold_crops``: fold ->
    the crops made from that fold's segmenter's masks (subjects without a manual mask), which only
    that fold's model scores."""
    # torch and the networks (seconds to import) only where CNN folds are applied: oncoflow.plan
    # imports this module while Snakemake parses
    import torch

    from oncoflow.models.catalog import INPUT_PREPARATION
    from oncoflow.models.ensemble import network_from_checkpoint
    from oncoflow.models.zoo import spatial_dims
    from oncoflow.train.kernels import use_cpu_kernels
    from oncoflow.train.loop import pick_device, predict_patients

    torch.set_num_threads(threads)
    use_cpu_kernels()
    device = pick_device("auto")
    crop = given["crop"]
    rows = []
    for name, spec in manifest["models"].items():
        if spec["kind"] != "cnn":
            continue
        dims = spatial_dims(spec["architecture"])
        samples = None
        prep = INPUT_PREPARATION.get(spec["architecture"])
        shape = {"dims": dims, "slices": crop["slices"], "depth": crop["depth"], "preparation": prep}
        for k in spec["folds"]:
            path = bundle / "checkpoints" / name / f"fold{k}.pt"
            ckpt = torch.load(path, map_location=device, weights_only=True)
            stamp = ckpt.get("oncoflow")
            if not stamp:
                raise PreparationMismatch(f"{path}: a checkpoint without its preparation stamp; make the bundle "
                                          "with `snakemake bundle`")
            check_preparation(stamp["preparation"], given, f"{name} fold {k}")
            if ckpt.get("input_preparation") != prep:  # a pretrained brain encoder's own input
                raise PreparationMismatch(f"{path}: trained on input prepared as {ckpt.get('input_preparation')}; "
                                          f"this oncoflow prepares {spec['architecture']} input as {prep}")
            if samples is None and crops:
                samples = model_samples(crops, stamp["modalities"], shape, crop["size"], name)
            model = network_from_checkpoint(ckpt, str(path)).to(device)
            parts = [samples] if samples is not None else []
            if (fold_crops or {}).get(k):  # this fold's crops from this fold's segmenter's masks
                parts.append(model_samples(fold_crops[k], stamp["modalities"], shape, crop["size"], name))
            for part in parts:
                prob = predict_patients(model, part, device, batch=32)
                rows.append(pd.DataFrame({"subject": part.subjects, "model": name, "fold": k, "probability": prob}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PER_FOLD_COLUMNS)


def model_samples(crops: dict[str, Path], modalities: list[str], shape: dict[str, Any], size: int,
                  model: str) -> Any:
    """A CNN model's input from ``crops`` (``shape``: build_samples' dims, slices, depth, preparation)."""
    from oncoflow.train.data import build_samples

    samples = build_samples(crops, modalities, **shape)
    if shape["preparation"] is None:  # a prepared input is resampled onto its own window
        check_crop_size(samples.x, size, model)
    return samples


def check_crop_size(x: np.ndarray, size: int, model: str) -> None:
    if x.shape[-1] != size or x.shape[-2] != size:
        raise PreparationMismatch(f"{model}: crops of {x.shape[-2]}x{x.shape[-1]} pixels; the model was trained on "
                                  f"{size}x{size} (crop.size)")


def baseline_fold_probabilities(bundle: Path, manifest: dict[str, Any], features: pd.DataFrame) -> pd.DataFrame:
    """The baseline's per-fold logistic model (standardisation and coefficients of that fold)."""
    if "baseline" not in manifest["models"]:
        return pd.DataFrame(columns=PER_FOLD_COLUMNS)
    feats = features.set_index("subject")
    rows = []
    for k in manifest["models"]["baseline"]["folds"]:
        coefs = pd.read_csv(bundle / "baseline" / f"fold{k}.tsv", sep="\t")
        terms = coefs[coefs["term"] != "(intercept)"]
        missing = [t for t in terms["term"] if t not in feats.columns]
        if missing:
            raise PreparationMismatch(f"baseline fold {k}: the new subjects' features lack {missing}")
        z = (feats[terms["term"]].astype(float) - terms["train_mean"].to_numpy()) / terms["train_sd"].to_numpy()
        intercept = float(coefs.loc[coefs["term"] == "(intercept)", "coefficient"].iloc[0])
        logit = z.to_numpy() @ terms["coefficient"].to_numpy() + intercept
        rows.append(pd.DataFrame({"subject": feats.index, "model": "baseline", "fold": k,
                                  "probability": 1.0 / (1.0 + np.exp(-logit))}))
    return pd.concat(rows, ignore_index=True)


def check_extraction(manifest: dict[str, Any], extraction: dict[str, dict[str, Any]]) -> None:
    """The new subjects' features were extracted as the training features were (settings, MIRP
    version, modality, x2 grid): PreparationMismatch naming each differing setting otherwise."""
    trained = manifest.get("radiomics_extraction", {})
    for variant, record in extraction.items():
        if variant not in trained:
            raise PreparationMismatch(f"radiomics variant {variant!r}: the bundle has no record of how its training "
                                      "features were extracted")
        check_preparation(trained[variant], record, f"radiomics features ({variant})")


def radiomics_fold_probabilities(bundle: Path, manifest: dict[str, Any], subjects: list[str],
                                 features: dict[str, pd.DataFrame], sheet: pd.DataFrame) -> pd.DataFrame:
    """Every radiomics, clinical and combined fold model's probability for ``subjects``
    (``features``: variant -> the new subjects' features table; ``sheet``: their clinical columns)."""
    rows = []
    for name, spec in manifest["models"].items():
        if spec["kind"] != "radiomics" or not subjects:
            continue
        variant = spec.get("variant")
        if variant and variant not in features:
            raise PreparationMismatch(f"{name}: no {variant} features for the new subjects")
        for k in spec["folds"]:
            saved = read_saved_model(bundle / "radiomics" / name / f"fold{k}.json")
            try:
                prob = apply_saved_model(saved, subjects, features.get(variant or ""), sheet)
            except SavedModelError as exc:
                raise PreparationMismatch(f"{name} fold {k}: {exc}") from None
            rows.append(pd.DataFrame({"subject": subjects, "model": name, "fold": k, "probability": prob.to_numpy()}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PER_FOLD_COLUMNS)


def fusion_fold_probabilities(bundle: Path, manifest: dict[str, Any], per_fold: pd.DataFrame) -> pd.DataFrame:
    """Each fusion, fold by fold, from that fold's base-model probabilities."""
    rows = []
    for name, spec in manifest["models"].items():
        if spec["kind"] != "fusion":
            continue
        for k in spec["folds"]:
            wide = (per_fold[(per_fold["fold"] == k) & per_fold["model"].isin(spec["inputs"])]
                    .pivot(index="subject", columns="model", values="probability")
                    .reindex(columns=spec["inputs"]).dropna())  # a subject lacking an input is not fused
            if spec["method"] == "mean":
                fused = wide.to_numpy().mean(axis=1)
            else:
                params = json.loads((bundle / "fusion" / spec["method"] / f"fold{k}.json").read_text())
                fused = apply_stacker(params, wide[params["inputs"]].to_numpy(dtype=float))
            rows.append(pd.DataFrame({"subject": wide.index, "model": name, "fold": k, "probability": fused}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PER_FOLD_COLUMNS)


def ensemble(per_fold: pd.DataFrame, calibration: pd.DataFrame) -> pd.DataFrame:
    """Per subject and model: mean probability, SD over folds, threshold, risk."""
    merged = per_fold.merge(calibration, on=["model", "fold"], how="left", validate="m:1")
    if merged["threshold"].isna().any():
        model = merged.loc[merged["threshold"].isna(), "model"].iloc[0]
        raise ValueError(f"calibration.tsv has no threshold for model {model!r}")
    merged["risk"] = apply_recalibration(merged["probability"].to_numpy(dtype=float),
                                         merged["recal_a"].to_numpy(dtype=float), merged["recal_b"].to_numpy(dtype=float))
    grouped = merged.groupby(["subject", "model"], sort=False)
    out = grouped.agg(probability=("probability", "mean"), probability_sd=("probability", lambda p: p.std(ddof=0)),
                      threshold=("threshold", "mean"), risk=("risk", "mean"), folds=("fold", "nunique"))
    if "set_negative" in merged.columns:  # bundles from before prediction sets have none
        out["prediction_set"] = majority_sets(merged["risk"], merged["set_negative"], merged["set_positive"],
                                              [merged["subject"], merged["model"]])
    return out.reset_index()


def predictions_table(scores: pd.DataFrame, samples: pd.DataFrame, qc: pd.DataFrame, models: list[str],
                      not_bundled: dict[str, str] | None = None, masks: dict[str, str] | None = None,
                      brain_crops: bool = False) -> pd.DataFrame:
    """One row per subject and model (every model, in bundle order, then the study's models the
    bundle lacks); ``predicted_positive`` 1 when the mean probability reaches the threshold (the
    study's positive class); subjects not scored keep empty scores and say why in ``status``.
    ``masks``: subject without a manual mask -> '' (its fold segmenters' masks were plausible) or
    why not; ``brain_crops``: whole-brain crops (crop.region brain), which need no mask. Column
    ``tumor_mask`` says which mask a score used: manual, predicted, or none (whole-brain crop)."""
    flags = qc.set_index("subject")["flag"].fillna("").astype(str) if len(qc) else pd.Series(dtype=str)
    masks = masks or {}
    rows = []
    scored = scores.set_index(["subject", "model"])
    for subject, row in samples.iterrows():
        flag = flags.get(subject, "")
        used = "manual" if row["tumor_mask"] else "none" if brain_crops else "predicted"
        for model in models:
            base = {"subject": subject, "cohort": row["cohort"], "model": model,
                    "y_true": row["y"] if pd.notna(row["y"]) else np.nan}
            if flag:
                rows.append({**base, "status": f"not scored: QC flagged ({flag})"})
            elif used == "predicted" and subject not in masks:
                rows.append({**base, "status": "not scored: no tumor mask in the sample sheet (and no segmenter "
                             "in the bundle)"})
            elif used == "predicted" and masks[subject]:
                rows.append({**base, "status": masks[subject]})
            elif (subject, model) not in scored.index and used == "predicted":
                rows.append({**base, "status": f"not scored: {model} reads features of a manual tumor mask (oncoflow "
                             "predict computes no features in a predicted mask, even for a study whose features "
                             "were: segment.feature_mask); predicted masks feed the CNN models (and their fusions)"})
            elif (subject, model) not in scored.index:
                rows.append({**base, "status": "not scored: no prediction (see the log)"})
            else:
                s = scored.loc[(subject, model)]
                rows.append({**base, "status": "scored", "tumor_mask": used, "probability": s["probability"],
                             "probability_sd": s["probability_sd"], "folds": int(s["folds"]),
                             "threshold": s["threshold"], "predicted_positive": int(s["probability"] >= s["threshold"]),
                             "risk": s["risk"], "prediction_set": s.get("prediction_set", "")})
        for model, why in (not_bundled or {}).items():
            rows.append({"subject": subject, "cohort": row["cohort"], "model": model,
                         "y_true": row["y"] if pd.notna(row["y"]) else np.nan, "status": f"not applied: {why}"})
    columns = ["subject", "cohort", "model", "status", "tumor_mask", "probability", "probability_sd", "folds", "threshold",
               "predicted_positive", "risk", "prediction_set", "y_true"]
    return pd.DataFrame(rows).reindex(columns=columns)


def predict_subjects(bundle: Path, crops: dict[str, Path], samples: pd.DataFrame, qc: pd.DataFrame,
                     features: pd.DataFrame | None, given: dict[str, Any], threads: int = 1,
                     radiomics: dict[str, pd.DataFrame] | None = None,
                     extraction: dict[str, dict[str, Any]] | None = None,
                     predicted_masks: dict[str, Path] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, per-fold probabilities) of every bundled model for the new subjects
    (``radiomics``: variant -> features table; ``extraction``: variant -> its settings.json;
    ``predicted_masks``: subject -> its predicted_mask.tsv from segment_new_subject)."""
    from oncoflow.segment.new_subjects import scored_fold_crops

    manifest = load_manifest(bundle)
    check_preparation(manifest["preparation"], given, str(bundle))
    check_extraction(manifest, extraction or {})
    # every fold's mask plausible: fold k's model scores the crop of fold k's mask
    masks, fold_crops = scored_fold_crops(predicted_masks or {})
    per_fold = cnn_fold_probabilities(bundle, manifest, crops, given, threads, fold_crops)
    if features is not None:
        per_fold = pd.concat([per_fold, baseline_fold_probabilities(bundle, manifest, features)], ignore_index=True)
    with_mask = [s for s in crops if samples.loc[s, "tumor_mask"]]
    per_fold = pd.concat([per_fold, radiomics_fold_probabilities(bundle, manifest, with_mask, radiomics or {},
                                                                 samples)], ignore_index=True)
    per_fold = pd.concat([per_fold, fusion_fold_probabilities(bundle, manifest, per_fold)], ignore_index=True)
    calibration = pd.read_csv(bundle / "calibration.tsv", sep="\t")
    scores = ensemble(per_fold, calibration)
    table = predictions_table(scores, samples, qc, list(manifest["models"]), manifest.get("not_bundled"), masks,
                              brain_crops=given["crop"].get("region") == "brain")
    return table, per_fold.sort_values(["model", "fold", "subject"]).reset_index(drop=True)


def new_cohort_metrics(predictions: pd.DataFrame, cv_metrics: pd.DataFrame | None, *, ci_method: str = "delong",
                       level: float = 0.95, n_boot: int = 2000) -> pd.DataFrame:
    """Per model and cohort of the new sheet: AUC with CI on the scored subjects, the counts, and
    the study's cross-validated AUC (metrics.tsv, cohort cv: pooled out-of-fold) beside it."""
    import warnings

    cv = {}
    if cv_metrics is not None and len(cv_metrics):
        pooled = cv_metrics[cv_metrics["cohort"] == "cv"]
        cv = {r["model"]: (r["auc"], r["auc_ci_low"], r["auc_ci_high"]) for _, r in pooled.iterrows()}
    rows = []
    for (cohort, model), part in predictions.groupby(["cohort", "model"], sort=False):
        scored = part[part["status"] == "scored"]
        y = scored["y_true"].to_numpy(dtype=float).astype(int)
        p = scored["probability"].to_numpy(dtype=float)
        auc = low = high = np.nan
        note = ""
        if scored.empty:
            note = f"no subject scored ({part['status'].iloc[0]})"
        elif len(np.unique(y)) == 2:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                auc, low, high = auc_ci(y, p, method=ci_method, level=level, n_boot=n_boot)
            note = "; ".join(sorted({str(w.message) for w in caught}))
        else:
            note = "one class among the scored subjects: no AUC"
        cv_auc, cv_low, cv_high = cv.get(model, (np.nan, np.nan, np.nan))
        pred_pos = scored["predicted_positive"].to_numpy(dtype=float).astype(int)
        rows.append({"cohort": cohort, "model": model, "n": len(part), "n_scored": len(scored),
                     "n_positive": int(y.sum()), "auc": auc, "auc_ci_low": low, "auc_ci_high": high,
                     "sensitivity": float(pred_pos[y == 1].mean()) if (y == 1).any() else np.nan,
                     "specificity": float(1 - pred_pos[y == 0].mean()) if (y == 0).any() else np.nan,
                     "cv_auc": cv_auc, "cv_auc_ci_low": cv_low, "cv_auc_ci_high": cv_high, "note": note})
    return pd.DataFrame(rows)
