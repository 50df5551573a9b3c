"""Explanation maps of a bundle's CNN models for new subjects (rule new_subject_maps).

predict applies a CNN model as the mean of its fold models' probabilities; its map is likewise the
mean of its fold models' maps. Each fold model's map is made as in the study (oncoflow.explain.maps:
the study's ``explain.methods``, from the bundle's resolved config; Grad-CAM on the layer the same
crop size chooses), but every fold model explains the same class, the one predict reports for the
subject (the mean probability against the study's threshold), so that the maps averaged are
evidence for one class; the study explains each fold model's own predicted class (logit > 0).
Files as the study's (oncoflow.explain.outputs.write_subject_maps), under ``maps/<model>/``: NIfTI
on the crop grid, on the reference grid (``reference/``) and a PNG overlay per subject.
A subject scored from predicted tumor masks was scored by fold k's model on the crop of fold k's
mask: fold k's map is written on that crop (``maps/<model>/fold<k>/``, its overlay and reference
map beside it), and the model's map is their mean on the reference grid, where the crops meet (a
pretrained brain encoder's window has no reference map: only the fold maps).
A subject predict did not score gets no map: maps.tsv lists it with predict's reason. The
randomisation check is the study's (reports/model_card.json in the bundle): maps.tsv repeats its
verdict per model and method; the new subjects' maps are not checked again.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from oncoflow.atomic import atomic_write
from oncoflow.predict.manifest import load_manifest

#: One row per subject, CNN model and method; paths relative to the maps folder.
MAP_COLUMNS = ["subject", "model", "method", "status", "explained_class", "folds", "layer", "crop_map",
               "reference_map", "overlay", "study_check", "seconds"]
CLASSES = ("negative", "positive")


def study_checks(bundle: Path) -> dict[tuple[str, str], str]:
    """(model, method) -> the study's randomisation verdict (the model card's explanation checks);
    empty when the bundle has no model card or the study made no maps."""
    from oncoflow.report.explanations import METHOD_NAMES, model_check_text

    path = bundle / "reports" / "model_card.json"
    rows = (json.loads(path.read_text()).get("explanation_checks") or []) if path.is_file() else []
    method_keys = {name: key for key, name in METHOD_NAMES.items()}
    return {(str(r["model"]), method_keys.get(str(r["method"]), str(r["method"]))): model_check_text(r) for r in rows}


def explain_classes(fold_model: Any, x: np.ndarray, classes: np.ndarray, method: str) -> tuple[np.ndarray, str]:
    """``method``'s maps of every input of ``x``, each explaining its row's class of ``classes``; the
    Grad-CAM layer ('' for occlusion)."""
    from oncoflow.explain.maps import explain

    maps = np.zeros((len(x), *x.shape[2:]), np.float32)
    layer = None
    for cls in np.unique(classes):
        rows = classes == cls
        maps[rows], layer = explain(fold_model.model, fold_model.architecture, x[rows], method, target=int(cls))
    return maps, "" if layer is None else str(layer)


def fold_maps(checkpoints: list[Path], crops: dict[str, Path], classes: dict[str, int], crop: dict[str, Any],
              methods: list[str]) -> tuple[Any, Any, dict[str, list[np.ndarray]], str]:
    """Every fold model's maps of the subjects of ``crops`` (one crop each, the same for every fold),
    each explaining its subject's class: (the first fold model, the samples, method -> the fold
    models' maps on the model input, Grad-CAM's layer)."""
    from oncoflow.explain.sanity import load_fold_model, model_samples

    samples, first, layer = None, None, ""
    maps: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    for path in checkpoints:
        fold_model = load_fold_model(path)
        if samples is None:
            first, samples = fold_model, model_samples(fold_model, crops, crop)
            rows = np.array([classes[samples.subjects[i]] for i in samples.subject_index])
        for method in methods:
            m, used = explain_classes(fold_model, samples.x, rows, method)
            maps[method].append(m)
            layer = used or layer
    return first, samples, maps, layer


def write_model_maps(name: str, folds: list[int], bundle: Path, scored: pd.DataFrame, crops: dict[str, Path],
                     fold_crops: dict[int, dict[str, Path]], crop: dict[str, Any], methods: list[str],
                     out_dir: Path) -> list[dict[str, Any]]:
    """One CNN model's maps of its scored subjects (``scored``: their predictions.tsv rows) under
    ``out_dir/<model>``; their maps.tsv rows (study_check left empty)."""
    from oncoflow.explain.outputs import REFERENCE_FOLDER, write_subject_maps
    from oncoflow.models.catalog import INPUT_PREPARATION
    from oncoflow.models.zoo import spatial_dims

    start = time.perf_counter()
    classes = {s: int(p) for s, p in zip(scored["subject"], scored["predicted_positive"], strict=True)}
    checkpoints = {k: bundle / "checkpoints" / name / f"fold{k}.pt" for k in folds}
    per_fold = [s for s in classes if any(s in fold_crops.get(k, {}) for k in folds)]
    shared = {s: crops[s] for s in classes if s not in per_fold}
    out, rows, layer, architecture = out_dir / name, [], "", ""
    files: dict[str, dict[str, str]] = {}

    def write(samples: Any, fold_model: Any, maps: dict[str, np.ndarray], crops_used: dict[str, Path],
              folder: Path, title: str) -> None:
        write_subject_maps(samples, maps, crops_used, architecture=fold_model.architecture,
                           dims=spatial_dims(fold_model.architecture), slices=int(crop["slices"]),
                           modality=fold_model.modalities[0], out_dir=folder, title=title)

    if shared:
        first, samples, maps, layer = fold_maps(list(checkpoints.values()), shared, classes, crop, methods)
        architecture = first.architecture
        mean = {m: np.mean(v, axis=0).astype(np.float32) for m, v in maps.items()}
        write(samples, first, mean, shared, out, f"{name}, mean of {len(folds)} fold models' maps")
        for s in shared:
            files[s] = {"crop": f"{name}/{s}_{{method}}.nii.gz", "overlay": f"{name}/{s}.png",
                        "reference": "" if architecture in INPUT_PREPARATION else f"{name}/{REFERENCE_FOLDER}/{s}_{{method}}.nii.gz"}
    if per_fold:  # fold k's model on the crop of fold k's predicted mask
        for k in folds:
            subjects = {s: fold_crops[k][s] for s in per_fold}
            first, samples, maps, used = fold_maps([checkpoints[k]], subjects, classes, crop, methods)
            layer, architecture = used or layer, first.architecture
            write(samples, first, {m: v[0] for m, v in maps.items()}, subjects, out / f"fold{k}",
                  f"{name} fold {k}, on the crop of fold {k}'s predicted mask")
        for s in per_fold:
            files[s] = {"crop": "; ".join(f"{name}/fold{k}/{s}_{{method}}.nii.gz" for k in folds),
                        "overlay": "; ".join(f"{name}/fold{k}/{s}.png" for k in folds), "reference": ""}
            if architecture not in INPUT_PREPARATION:  # the fold maps meet on the reference grid
                for method in methods:
                    fold_refs = [nib.load(out / f"fold{k}" / REFERENCE_FOLDER / f"{s}_{method}.nii.gz") for k in folds]
                    mean_ref = np.mean([np.asarray(img.dataobj) for img in fold_refs], axis=0).astype(np.float32)
                    (out / REFERENCE_FOLDER).mkdir(parents=True, exist_ok=True)
                    with atomic_write(out / REFERENCE_FOLDER / f"{s}_{method}.nii.gz") as tmp:
                        nib.save(nib.Nifti1Image(mean_ref, fold_refs[0].affine), str(tmp))
                files[s]["reference"] = f"{name}/{REFERENCE_FOLDER}/{s}_{{method}}.nii.gz"
    seconds = (time.perf_counter() - start) / len(classes)
    print(f"{name}: {', '.join(methods)} maps of {len(classes)} subjects from {len(folds)} fold models "
          f"({seconds:.1f} s a subject)", file=sys.stderr, flush=True)
    for s, cls in classes.items():
        for method in methods:
            rows.append({"subject": s, "model": name, "method": method, "status": "written",
                         "explained_class": CLASSES[cls], "folds": len(folds),
                         "layer": layer if method == "gradcam" else "",
                         **{f"{key}_map" if key != "overlay" else key: value.format(method=method)
                            for key, value in files[s].items()}, "seconds": round(seconds, 3)})
    return rows


def new_subject_maps(bundle: Path, predictions: pd.DataFrame, crops: dict[str, Path],
                     fold_crops: dict[int, dict[str, Path]], crop: dict[str, Any], methods: list[str],
                     out_dir: Path, threads: int = 1) -> pd.DataFrame:
    """Every bundled CNN model's maps of the subjects predict scored (``predictions``: predictions.tsv;
    ``crops``: subject -> its crop; ``fold_crops``: fold -> the crops of that fold's predicted masks)
    under ``out_dir``, and the maps table (the subjects not scored listed with predict's reason)."""
    import torch

    from oncoflow.train.kernels import use_cpu_kernels

    torch.set_num_threads(threads)
    use_cpu_kernels()
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(bundle)
    checks = study_checks(bundle)
    rows: list[dict[str, Any]] = []
    for name, spec in manifest["models"].items():
        if spec["kind"] != "cnn":
            continue
        preds = predictions[predictions["model"] == name]
        scored = preds[preds["status"] == "scored"]
        rows += [{"subject": r.subject, "model": name, "method": method, "status": f"no map: {r.status}"}
                 for r in preds[preds["status"] != "scored"].itertuples() for method in methods]
        if len(scored):
            rows += write_model_maps(name, [int(k) for k in spec["folds"]], bundle, scored, crops, fold_crops, crop,
                                     methods, out_dir)
    table = pd.DataFrame(rows).reindex(columns=MAP_COLUMNS)
    table["study_check"] = [checks.get((m, meth), "no check in the bundle (no model card, or the study made no maps)")
                            for m, meth in zip(table["model"], table["method"], strict=True)]
    return table
