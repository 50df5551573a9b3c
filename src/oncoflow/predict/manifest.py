"""What a bundle's manifest promises and what a new input must match: the bundle format, the
preparation record (everything that shapes a model's input) and the check that new input was
prepared the same way.

Light on purpose: the study plan imports this at parse time (every Snakemake invocation and every
SLURM job's start); building or applying a bundle (oncoflow.predict.bundle / apply) needs
scikit-learn and the metrics, which cost about 1 CPU s to import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oncoflow.config import radiomics_active, radiomics_modality

NORMALISATION = "z-score on the subject's own brain voxels, zero outside the brain"
BUNDLE_FORMAT = 1
#: The bundle member holding the training cohort's QC distributions (oncoflow.preprocess.qc.qc_reference).
QC_REFERENCE = "qc_reference.tsv"


def preparation(config: dict[str, Any]) -> dict[str, Any]:
    """Everything that shapes a model's input, from the resolved config: series-to-modality rules,
    the preprocessing settings, the crop geometry (incl. slices/depth) and the normalisation; with
    the radiomics branch, its modality, variants, extraction settings and the variants' x2 grid."""
    prep = {"modalities": list(config["ingest"]["modalities"]),
            "ingest": {"modalities": config["ingest"]["modalities"]},
            "preprocess": config["preprocess"], "crop": config["crop"], "normalisation": NORMALISATION}
    if radiomics_active(config):
        rad = config["radiomics"]
        prep["radiomics"] = {"modality": radiomics_modality(config), "variants": list(rad["variants"]),
                             "settings": rad["settings"]}
        if {"sr", "interp"} & set(rad["variants"]):
            prep["radiomics"]["upsampling"] = {k: config["superres"][k] for k in ("axes", "factor")}
    return prep


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(set(value)):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.loads(json.dumps(value, default=str))}


def preparation_mismatches(trained: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """'crop.size: trained on 32, this input 48', one per setting that differs."""
    a, b = _flatten(trained), _flatten(given)
    return [f"{key}: trained on {a.get(key, '(unset)')!r}, this input {b.get(key, '(unset)')!r}"
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


class PreparationMismatch(ValueError):
    """The input was prepared differently from the input the models were trained on."""


def load_manifest(bundle: Path) -> dict[str, Any]:
    path = bundle / "bundle.json"
    if not path.is_file():
        raise FileNotFoundError(f"{bundle}: no bundle.json (not an unpacked `snakemake bundle` file)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{path}: bundle format {manifest.get('format')!r}; this oncoflow reads {BUNDLE_FORMAT}")
    return manifest


def check_preparation(trained: dict[str, Any], given: dict[str, Any], where: str) -> None:
    """Stop, naming every differing setting, when the input is not prepared as for training."""
    problems = preparation_mismatches(trained, given)
    if problems:
        raise PreparationMismatch(
            f"{where}: the models were trained on input prepared differently from this input: "
            + "; ".join(problems) + ". Predict with the bundle's own settings (`oncoflow predict` uses them: "
            "do not --set ingest, preprocess, crop or radiomics keys), or retrain the study with the new ones")


def cotrained_models(manifest: dict[str, Any]) -> list[str]:
    """The bundled CNN models trained with a segmentation head (``cotrain_segmentation``; a bundle
    made before the key existed records none)."""
    return [n for n, s in manifest["models"].items() if s["kind"] == "cnn" and s.get("cotrain_segmentation")]
