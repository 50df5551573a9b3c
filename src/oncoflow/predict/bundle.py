"""A study's portable bundle (rule ``bundle``): one .tar.gz that ``oncoflow predict`` applies to new
exams on a machine with only the package installed.

Inside ``<study>.tar.gz`` everything sits under ``<study>/``:

  MANIFEST.sha256             sha256 and path of every other member
  bundle.json                 models (kind, folds, inputs), the preparation, config checksum, versions,
                              the resolved config (read first: members are sorted, it precedes the weights)
                              and, per radiomics variant, how its features were extracted (settings, MIRP
                              version, modality, the x2 grid), compared with the new subjects' extraction
  config/resolved.json        the resolved config that trained the models (every default filled in)
  checkpoints/<model>/fold<k>.pt   each CNN fold model, stamped with what it needs to be applied
                              (bundle.json: whether it has a co-trained segmentation head)
  baseline/fold<k>.tsv        the baseline's standardisation and coefficients per fold
  radiomics/<model>/fold<k>.json   each radiomics, clinical and combined fold model (model.json of
                              fit_radiomics_model: oncoflow.radiomics.saved), checked to reproduce the
                              fold's test and external predictions
  superres/generator.pt       the super-resolution generator (variant sr)
  segmenters/fold<k>.pt       each fold's tumor segmenter, when the study cropped from predicted masks
                              (segment.crop_mask predicted / predicted_where_missing); bundle.json
                              ``segmenters`` records the network and settings that rebuild it
  fusion/<method>/fold<k>.json     the stacking model of each fold (lr, svm), as numbers
  calibration.tsv             per model and fold: the threshold, the recalibration method and map (a, b), the
                              conformal thresholds set_negative / set_positive (oncoflow.metrics.conformal)
  provenance.json, reports/   the study's provenance and report files (metrics, methods, model card)

Thresholds and recalibration maps are those evaluation uses (oncoflow.metrics.evaluate:
fold_thresholds, fold_map: each model's method of oncoflow.metrics.choices.model_recalibration,
prior_shift from the fold's training labels, logistic from its inner-validation patients, or none). Stacking models are
refitted here from the same inputs with the same code as fuse_predictions (deterministic), and the
bundle is refused unless they reproduce the fold's fused predictions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oncoflow.fusion.late import FIT_ROLE, fit_stacker, logit, wide_predictions
from oncoflow.metrics.evaluate import fold_map, fold_thresholds
from oncoflow.config import expand_models
from oncoflow.metrics.choices import model_recalibration
from oncoflow.metrics.conformal import fold_set_thresholds
from oncoflow.metrics.recalibration import apply_recalibration
from oncoflow.predict.manifest import BUNDLE_FORMAT, QC_REFERENCE, preparation
from oncoflow.radiomics.models import FIT_ROLES
from oncoflow.radiomics.saved import SavedModelError, check_saved_model, read_saved_model
from oncoflow.report.archive import write_archive
from oncoflow.report.provenance import versions

#: How crop_tumor normalises every modality (oncoflow.crop.tumor_crop.normalise_in_brain).
#: A refitted stacker must reproduce the fold's fused predictions (6 decimals in predictions.tsv).
STACKER_TOLERANCE = 2e-6


class BundleError(ValueError):
    pass


def config_sha256(config: dict[str, Any]) -> str:
    """Checksum of the resolved config that trained the models (the predict section left out)."""
    text = json.dumps({k: v for k, v in config.items() if k != "predict"}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def extraction_record(settings_json: Path) -> dict[str, Any]:
    """A variant's settings.json (extract_radiomics) without its counts: what shaped the features."""
    record = json.loads(Path(settings_json).read_text())
    return {k: v for k, v in record.items() if k not in ("subjects", "features")}


def software_versions(provenance: Path | None) -> dict[str, Any]:
    """The training run's package versions (provenance.json), else this environment's."""
    if provenance is not None and provenance.is_file():
        record = json.loads(provenance.read_text())
        if record.get("software"):
            return dict(record["software"])
    return versions()


def stamp_checkpoint(src: Path, dst: Path, stamp: dict[str, Any]) -> None:
    """Copy a train_model checkpoint, adding ``oncoflow``: what applying it safely needs."""
    import torch

    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    ckpt["oncoflow"] = stamp
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, dst)


def stacker_params(method: str, frames: list[pd.DataFrame], seed: int) -> dict[str, Any]:
    """The lr / svm stacking model of one fold (fitted as oncoflow.fusion.late.fuse fits it, on the
    fold's inner-validation predictions) as numbers: standardisation, linear weights and, for svm,
    the Platt sigmoid. Refused unless it reproduces the fold's fused test/external predictions."""
    wide = wide_predictions(frames)
    models = [str(f["model"].iloc[0]) for f in frames]
    fit = (wide["role"] == FIT_ROLE).to_numpy()
    x = logit(wide[models].to_numpy(dtype=float))
    clf, _ = fit_stacker(method, x[fit], wide.loc[fit, "y_true"].to_numpy().astype(int), seed)
    if method == "lr":
        scaler, lr = clf.named_steps["standardscaler"], clf.named_steps["logisticregression"]
        params = {"inputs": models, "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
                  "coef": lr.coef_[0].tolist(), "intercept": float(lr.intercept_[0])}
    else:
        calibrated = clf.calibrated_classifiers_[0]
        pipe = calibrated.estimator
        pipe = getattr(pipe, "estimator", pipe)  # FrozenEstimator (in-sample Platt) wraps the pipeline
        scaler, svm = pipe.named_steps["standardscaler"], pipe.named_steps["svc"]
        sigmoid = calibrated.calibrators[0]
        params = {"inputs": models, "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
                  "coef": svm.coef_[0].tolist(), "intercept": float(svm.intercept_[0]),
                  "platt_a": float(sigmoid.a_), "platt_b": float(sigmoid.b_)}
    params["method"] = method
    check = apply_stacker(params, wide[models].to_numpy(dtype=float))
    reference = clf.predict_proba(x)[:, 1]
    if np.max(np.abs(check - reference)) > 1e-9:
        raise BundleError(f"fusion_{method}: the exported stacker does not reproduce scikit-learn's "
                          "probabilities")
    return params


def apply_stacker(params: dict[str, Any], probabilities: np.ndarray) -> np.ndarray:
    """Fused probability of each row of base-model probabilities (columns in ``params['inputs']``)."""
    z = (logit(probabilities) - np.asarray(params["mean"])) / np.asarray(params["scale"])
    f = z @ np.asarray(params["coef"]) + params["intercept"]
    if params["method"] == "svm":
        f = -(params["platt_a"] * f + params["platt_b"])  # sklearn's sigmoid: 1 / (1 + exp(a f + b))
    return 1.0 / (1.0 + np.exp(-f))


def fold_calibration(preds: pd.DataFrame, threshold: str | float,
                     prediction_sets: dict[str, Any] | None = None, methods: dict[str, str] | None = None) -> pd.DataFrame:
    """Per model and fold: evaluation's threshold and recalibration map (its method from ``methods``,
    oncoflow.metrics.choices.model_recalibration, fitted by evaluation's fold_map), and
    with ``prediction_sets`` (evaluate.prediction_sets) the conformal thresholds ``set_negative`` /
    ``set_positive`` of the models whose ``methods`` (recalibration) let them have sets
    (oncoflow.metrics.conformal; NaN for the others)."""
    table = fold_thresholds(preds, threshold)
    maps = []
    for (model, fold), part in preds.groupby(["model", "fold"]):
        method, a, b, note = fold_map(part, methods)
        row = {"model": model, "fold": fold, "recal_method": method, "recal_a": a, "recal_b": b, "recal_note": note}
        if prediction_sets is not None:
            row["set_negative"] = row["set_positive"] = np.nan
            risk = apply_recalibration(part["probability"].to_numpy(dtype=float), a, b)
            t = fold_set_thresholds(part.assign(risk=risk), method, float(prediction_sets["error_rate"]),
                                    by_class=bool(prediction_sets["by_class"]))
            if t is not None:
                row["set_negative"], row["set_positive"] = t.negative, t.positive
        maps.append(row)
    return table.merge(pd.DataFrame(maps), on=["model", "fold"], validate="1:1")


def read_predictions(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"subject": str})


def build_bundle(out: Path, *, results: Path, config: dict[str, Any], cnn: dict[str, dict[str, Any]],
                 fused: list[str], fusion_methods: list[str], baseline: bool, folds: list[int],
                 reports: dict[str, Path], left_out: dict[str, str],
                 radiomics: dict[str, Any] | None = None,
                 segmenters: dict[int, Path] | None = None) -> dict[str, str]:
    """Write the bundle ``out``; returns member -> sha256. ``cnn``: model -> {architecture,
    modalities}; ``reports``: bundle name -> results file; ``left_out``: model -> why not bundled;
    ``radiomics``: models (model -> variant), features / settings (variant -> path), samples (the
    study's sheet) and generator (sr), as StudyPlan.bundle_params; ``segmenters``: fold -> the
    fold's segmenter checkpoint (rule tumor_segmenter)."""
    import tempfile

    prep = preparation(config)
    digest = config_sha256(config)
    provenance = results / "provenance.json"
    software = software_versions(provenance)
    seed = int(config["cv"]["seed"])
    members: dict[str, Path | bytes] = {}
    models: dict[str, dict[str, Any]] = {}
    predictions = []
    with tempfile.TemporaryDirectory(prefix="oncoflow-bundle-", dir=out.parent) as tmp:
        for name, spec in cnn.items():
            for k in folds:
                folder = results / "models" / name / f"fold{k}"
                stamp = {"format": BUNDLE_FORMAT, "model": name, "fold": k, "architecture": spec["architecture"],
                         "modalities": list(spec["modalities"]), "preparation": prep, "config_sha256": digest,
                         "software": software}
                target = Path(tmp) / "checkpoints" / name / f"fold{k}.pt"
                stamp_checkpoint(folder / "checkpoint.pt", target, stamp)
                members[f"checkpoints/{name}/fold{k}.pt"] = target
                predictions.append(read_predictions(folder / "predictions.tsv"))
            models[name] = {"kind": "cnn", "architecture": spec["architecture"],
                            "modalities": list(spec["modalities"]), "folds": list(folds),
                            "cotrain_segmentation": bool(spec.get("cotrain_segmentation"))}
        for method in fusion_methods:
            name = f"fusion_{method}"
            for k in folds:
                predictions.append(read_predictions(results / "models" / name / f"fold{k}" / "predictions.tsv"))
                if method == "mean":
                    continue
                frames = [read_predictions(results / "models" / m / f"fold{k}" / "predictions.tsv") for m in fused]
                params = stacker_params(method, frames, seed)
                check_stacker(params, frames, predictions[-1], name, k)
                members[f"fusion/{method}/fold{k}.json"] = (json.dumps(params, indent=1) + "\n").encode()
            models[name] = {"kind": "fusion", "method": method, "inputs": list(fused), "folds": list(folds)}
        if baseline:
            for k in folds:
                folder = results / "models" / "baseline" / f"fold{k}"
                members[f"baseline/fold{k}.tsv"] = folder / "coefficients.tsv"
                predictions.append(read_predictions(folder / "predictions.tsv"))
            models["baseline"] = {"kind": "baseline", "folds": list(folds)}
        extraction: dict[str, Any] = {}
        if radiomics and radiomics["models"]:
            models.update(radiomics_members(results, radiomics, folds, members, predictions))
            extraction = {v: extraction_record(Path(p)) for v, p in radiomics["settings"].items()}
        segmenting = segmenter_members(segmenters or {}, config, members)
        calibration = fold_calibration(pd.concat(predictions, ignore_index=True), config["evaluate"]["threshold"],
                                       config["evaluate"].get("prediction_sets"),
                                       model_recalibration(config, expand_models(config)))
        members["calibration.tsv"] = calibration.to_csv(sep="\t", index=False, float_format="%.10g").encode()
        manifest = {"format": BUNDLE_FORMAT, "study": config["study"], "models": models, "fused": list(fused),
                    "folds": list(folds), "preparation": prep, "config_sha256": digest, "software": software,
                    "not_bundled": left_out, "radiomics_extraction": extraction, "reports": sorted(reports),
                    "config": config, **({"segmenters": segmenting} if segmenting else {})}
        members["bundle.json"] = (json.dumps(manifest, indent=1, default=str) + "\n").encode()
        members["config/resolved.json"] = (json.dumps(config, indent=1, default=str) + "\n").encode()
        if provenance.is_file():
            members["provenance.json"] = provenance
        qc = results / "qc" / "qc.tsv"
        if qc.is_file():  # the training cohort's QC distributions: predict judges even one new subject by them
            from oncoflow.preprocess.qc import qc_reference

            reference = qc_reference(pd.read_csv(qc, sep="\t", dtype={"subject": str}), list(config["ingest"]["modalities"]))
            members[QC_REFERENCE] = reference.to_csv(sep="\t", index=False, float_format="%.6g").encode()
        members.update(reports)
        return write_archive(out, members, root=config["study"]["name"], compresslevel=0)


def segmenter_members(segmenters: dict[int, Path], config: dict[str, Any],
                      members: dict[str, Path | bytes]) -> dict[str, Any]:
    """Each fold's segmenter (``segmenters/fold<k>.pt``) and its manifest record: the MONAI network,
    the settings that rebuild it (from the checkpoint), how many patients trained it, and the bounds
    predict judges a new mask by. Nothing to download: the weights travel in the bundle."""
    if not segmenters:
        return {}
    import monai
    import torch

    from oncoflow.segment.settings import segment_settings

    settings = {}
    for k, path in sorted(segmenters.items()):
        state = torch.load(path, map_location="cpu", weights_only=True)
        if int(state["fold"]) != int(k):
            raise BundleError(f"{path}: the segmenter of fold {state['fold']}, bundled as fold {k}")
        members[f"segmenters/fold{k}.pt"] = Path(path)
        settings[str(k)] = {**state["config"], "training_patients": len(state["subjects"])}
    return {"folds": sorted(int(k) for k in segmenters), "network": "MONAI 2D (oncoflow.segment.segmenter.build_network)",
            "monai": monai.__version__, "crop_mask": config["segment"]["crop_mask"], "settings": settings,
            "plausibility": segment_settings(config).plausibility()}


def check_stacker(params: dict[str, Any], frames: list[pd.DataFrame], fused: pd.DataFrame, name: str,
                  fold: int) -> None:
    """The exported stacker gives the fold's fused probability of every test / external patient."""
    wide = wide_predictions(frames)
    rows = (wide["role"] != FIT_ROLE).to_numpy()  # validation rows are cross-fitted, not this model's
    mine = apply_stacker(params, wide.loc[rows, params["inputs"]].to_numpy(dtype=float))
    theirs = fused.set_index("subject").loc[wide.loc[rows, "subject"], "probability"].to_numpy(dtype=float)
    worst = float(np.max(np.abs(mine - theirs))) if rows.any() else 0.0
    if worst > STACKER_TOLERANCE:
        raise BundleError(f"{name} fold {fold}: the refitted stacking model differs from the fused predictions "
                          f"by {worst:.2g}; the fold's inputs changed after fusion (rerun the workflow first)")


def radiomics_members(results: Path, radiomics: dict[str, Any], folds: list[int], members: dict[str, Path | bytes],
                      predictions: list[pd.DataFrame]) -> dict[str, dict[str, Any]]:
    """Each radiomics, clinical and combined fold model (its model.json), refused unless it
    reproduces the fold's test and external predictions from the study's features and sheet, and
    the super-resolution generator; adds them to ``members`` and their predictions to
    ``predictions``; returns the manifest's model entries."""
    sheet = pd.read_csv(radiomics["samples"], sep="\t", dtype=str, keep_default_na=False).set_index("subject",
                                                                                                    drop=False)
    features = {v: pd.read_csv(p, sep="\t", dtype={"subject": str}) for v, p in radiomics["features"].items()}
    models: dict[str, dict[str, Any]] = {}
    for name, variant in radiomics["models"].items():
        clinical: list[str] = []
        for k in folds:
            folder = results / "models" / name / f"fold{k}"
            saved = read_saved_model(folder / "model.json")
            preds = read_predictions(folder / "predictions.tsv")
            predictions.append(preds)
            held_out = preds[~preds["role"].isin(FIT_ROLES)].set_index("subject")["probability"]
            try:
                check_saved_model(saved, held_out, features.get(variant or ""), sheet, tolerance=STACKER_TOLERANCE)
            except SavedModelError as exc:
                raise BundleError(str(exc)) from None
            members[f"radiomics/{name}/fold{k}.json"] = folder / "model.json"
            clinical = saved.get("clinical", {}).get("columns", [])
        models[name] = {"kind": "radiomics", "variant": variant, "clinical": clinical, "folds": list(folds)}
    if radiomics["generator"]:
        members["superres/generator.pt"] = Path(radiomics["generator"])
    return models
