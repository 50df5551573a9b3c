"""Semantic checks of a schema-valid config, and the models and pretrain jobs it defines.

The JSON schema (workflow/schemas/) checks types and allowed values; this module checks what a
schema cannot: cross-references between sections. Every error names the config field. The sample
sheet's checks are in oncoflow.sheet, the resolved study in oncoflow.plan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from oncoflow.models.catalog import ENCODERS_3D, SEGMENTATION, init_unsupported, task_unsupported
from oncoflow.radiomics.names import radiomics_model_names

class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    architecture: str
    modalities: tuple[str, ...]
    params: dict[str, Any]  # every hyper-parameter, as the train rule's params (rerun trigger)


def model_name(inputs: str, architecture: str, tag: str | None = None) -> str:
    """``flair+t1ce_resnet18``; a ``tag`` tells apart variants of one architecture and input
    (e.g. ``flair_resnet18_indomain`` beside ``flair_resnet18``)."""
    return f"{inputs}_{architecture}" + (f"_{tag}" if tag else "")


def expand_models(config: dict[str, Any]) -> dict[str, ModelSpec]:
    """One ModelSpec per (models[i], inputs[j]); names like ``flair+t1ce_resnet18``. Checks what
    the schema cannot: weights for the init, the pretrain job a model names, and that its
    architecture supports co-training / the pretraining task."""
    known = list(config["ingest"]["modalities"])
    pretrain = {p["name"]: (k, p) for k, p in enumerate(config.get("pretrain") or [])}
    specs: dict[str, ModelSpec] = {}
    for i, entry in enumerate(config["models"]):
        init, arch = entry.get("init", "scratch"), entry["architecture"]
        reason = init_unsupported(init, arch)
        if reason:
            raise ConfigError(f"config: models[{i}].init: {reason}")
        if init == "pretrained":
            if entry.get("weights"):
                raise ConfigError(f"config: models[{i}].weights: init 'pretrained' starts from the "
                                  "workflow's own pretraining (models[].pretrained names the pretrain "
                                  "job), not from a file; remove weights or use init: checkpoint")
            name = entry.get("pretrained")
            if not name:
                raise ConfigError(f"config: models[{i}].pretrained: init 'pretrained' needs the name "
                                  "of a pretrain job")
            if name not in pretrain:
                defined = ", ".join(pretrain) or "none"
                raise ConfigError(f"config: models[{i}].pretrained: no pretrain job {name!r} "
                                  f"(pretrain defines {defined})")
            k, job = pretrain[name]
            reason = task_unsupported(job.get("task", "segmentation"), arch)
            if reason:
                raise ConfigError(f"config: models[{i}].pretrained: pretrain[{k}] ({name!r}): {reason}")
        elif entry.get("pretrained"):
            raise ConfigError(f"config: models[{i}].pretrained: set, but init is {init!r} "
                              "(use init: pretrained)")
        elif init not in ("scratch", *ENCODERS_3D.values()) and not entry.get("weights"):
            raise ConfigError(f"config: models[{i}].weights: init {init!r} needs a local "
                              "weights file")
        if entry.get("cotrain_segmentation") and arch not in SEGMENTATION:
            raise ConfigError(f"config: models[{i}].cotrain_segmentation: {arch!r} has no "
                              f"segmentation head (ResNet family: {', '.join(SEGMENTATION)})")
        if "seg_weight" in entry and not entry.get("cotrain_segmentation"):
            raise ConfigError(f"config: models[{i}].seg_weight: only with cotrain_segmentation: true")
        for j, inputs in enumerate(entry["inputs"]):
            modalities = tuple(inputs.split("+"))
            unknown = [m for m in modalities if m not in known]
            if unknown:
                raise ConfigError(f"config: models[{i}].inputs[{j}]: unknown modality "
                                  f"{unknown[0]!r} (ingest.modalities defines {', '.join(known)})")
            name = model_name(inputs, entry["architecture"], entry.get("tag"))
            if name in specs:
                raise ConfigError(f"config: models[{i}].inputs[{j}]: model {name!r} defined twice "
                                  "(give one of the entries a distinct models[].tag)")
            params = {k: v for k, v in entry.items() if k != "inputs"}
            specs[name] = ModelSpec(name, entry["architecture"], modalities, params)
    return specs


# For a config not validated by the schema (tests); equal to the schema's defaults
# (tests/test_config_defaults.py).
PRETRAIN_DEFAULTS = {"epochs": 20, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-4}


@dataclass(frozen=True)
class PretrainJob:
    """One pretraining: pretrain job ``name`` applied to the backbone of model ``model`` (its
    architecture and input channels), once per fold."""
    name: str
    model: str
    architecture: str
    modalities: tuple[str, ...]
    params: dict[str, Any]  # the pretrain rule's params (rerun trigger)


def expand_pretrain(config: dict[str, Any], specs: dict[str, ModelSpec]) -> dict[tuple[str, str], PretrainJob]:
    """(pretrain name, model name) -> PretrainJob for every model with init: pretrained. A
    pretrain entry is a recipe (source, task, schedule); the backbone it trains is the one of each
    model that names it, so one entry serves several models (one checkpoint per model and fold)."""
    jobs: dict[tuple[str, str], PretrainJob] = {}
    entries = config.get("pretrain") or []
    seen: set[str] = set()
    for k, entry in enumerate(entries):
        name = entry["name"]
        if name in seen:
            raise ConfigError(f"config: pretrain[{k}].name: {name!r} defined twice")
        seen.add(name)
        source = entry.get("source", "folds")
        if source == "cohort" and not entry.get("samples"):
            raise ConfigError(f"config: pretrain[{k}].samples: source 'cohort' needs the other "
                              "cohort's sample sheet")
        if source == "folds" and entry.get("samples"):
            raise ConfigError(f"config: pretrain[{k}].samples: only for source: cohort")
        init = entry.get("init", "scratch")
        if init != "scratch" and not entry.get("weights"):
            raise ConfigError(f"config: pretrain[{k}].weights: init {init!r} needs a local weights file")
    by_name = {e["name"]: e for e in entries}
    for spec in specs.values():
        if spec.params.get("init") != "pretrained":
            continue
        entry = by_name[spec.params["pretrained"]]
        params = {"task": "segmentation", "source": "folds", "init": "scratch", "weights": None,
                  **{k: v for k, v in entry.items() if k != "samples" or v},
                  "architecture": spec.architecture, "modalities": list(spec.modalities)}
        for key, default in PRETRAIN_DEFAULTS.items():
            params.setdefault(key, default)
        jobs[(entry["name"], spec.name)] = PretrainJob(entry["name"], spec.name, spec.architecture,
                                                       spec.modalities, params)
    return jobs


def fusion_inputs(config: dict[str, Any], specs: dict[str, ModelSpec]) -> list[str]:
    chosen = config.get("fusion", {}).get("models") or [
        n for n, s in specs.items() if len(s.modalities) == 1
    ]
    for name in chosen:
        if name not in specs:
            raise ConfigError(f"config: fusion.models: {name!r} is not a model "
                              f"(models are {', '.join(specs)})")
    return chosen


def check_config_files(paths: list[str | Path]) -> None:
    """Snakemake's YAML loading keeps the last of two equal keys silently (a second ``models:`` would
    replace the first); refuse a config file with a duplicate key, naming file, line and key."""
    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"{loader.name}: line {key_node.start_mark.line + 1}: duplicate key {key!r} "
                                  f"(first at line {seen[key]}); YAML would keep only the last one")
            seen[key] = key_node.start_mark.line + 1
        return loader.construct_mapping(node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    for path in paths:
        with open(path) as fh:
            loader = StrictLoader(fh)
            loader.name = str(path)
            try:
                loader.get_single_data()
            finally:
                loader.dispose()


def check_config(config: dict[str, Any]) -> None:
    modalities = list(config["ingest"]["modalities"])
    for modality, patterns in config["ingest"]["modalities"].items():
        for k, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"config: ingest.modalities.{modality}[{k}]: invalid regular expression "
                                  f"{pattern!r} ({exc})") from None
    ref = config["preprocess"]["reference"]
    if ref not in modalities:
        raise ConfigError(f"config: preprocess.reference: unknown modality {ref!r} "
                          f"(ingest.modalities defines {', '.join(modalities)})")
    specs = expand_models(config)
    expand_pretrain(config, specs)
    check_radiomics_config(config)
    check_harmonisation_config(config)
    if not specs and not radiomics_active(config):
        raise ConfigError("config: models is empty and radiomics.activate is false: nothing to train "
                          "or evaluate (add a models entry or set radiomics.activate: true)")
    if config.get("fusion", {}).get("methods"):
        if len(fusion_inputs(config, specs)) < 2:
            raise ConfigError("config: fusion.methods is set but fewer than two models to fuse")
    atlas = config["preprocess"].get("atlas", {})
    if atlas.get("activate"):
        for key in ("template", "template_mask"):
            value = atlas.get(key)
            if value and value != "mni152" and not Path(value).is_file():
                raise ConfigError(f"config: preprocess.atlas.{key}: {value} is not a file"
                                  + (" (use 'mni152' or a NIfTI template file)" if key == "template" else ""))


def second_opinion(backend: str, requested: str | None) -> str | None:
    """The extractor that checks ``backend``: none when switched off, when there is no brain
    extraction, or when it would be the backend itself."""
    if requested in (None, "none") or backend == "none" or requested == backend:
        return None
    return requested


def brain_extraction_params(config: dict[str, Any]) -> dict:
    """The extract_brain rule's params from the validated config (preprocess.brain_extraction)."""
    brain = config["preprocess"]["brain_extraction"]
    return {"backend": brain["backend"], "hdbet": dict(brain["hdbet"]),
            "second_opinion": second_opinion(brain["backend"], brain["second_opinion"]),
            "min_agreement": brain["min_agreement"]}


def crop_stages(config: dict[str, Any]) -> tuple[str, str]:
    """Subject folders crops read (images and brain mask, tumor mask): atlas/ with
    preprocess.atlas.activate, else brain/ and coreg/."""
    return ("atlas", "atlas") if config["preprocess"]["atlas"]["activate"] else ("brain", "coreg")


def qc_atlas_inputs(config: dict[str, Any], results: str, subject: str) -> dict[str, str]:
    """plot_qc_montage's atlas inputs (preprocess.atlas.activate; else none): the reference on the
    template grid, the subject's and the template's brain masks there, the tumor mask, atlas.tsv."""
    if not config["preprocess"]["atlas"]["activate"]:
        return {}
    folder = f"{results}/subjects/{subject}/atlas"
    return {"atlas_image": f"{folder}/{config['preprocess']['reference']}.nii.gz",
            "atlas_brain_mask": f"{folder}/brain_mask.nii.gz", "atlas_tumor_mask": f"{folder}/tumor_mask.nii.gz",
            "template_mask": f"{folder}/template_mask.nii.gz", "atlas_report": f"{folder}/atlas.tsv"}


def radiomics_active(config: dict[str, Any]) -> bool:
    return bool((config.get("radiomics") or {}).get("activate"))


def radiomics_modality(config: dict[str, Any]) -> str:
    return (config.get("radiomics") or {}).get("modality") or config["preprocess"]["reference"]


#: Interpolation of the radiomics variant interp (oncoflow.superres.baseline.METHODS).
INTERP_METHOD = "bspline"


def radiomics_upsampling(config: dict[str, Any], variant: str) -> dict[str, Any] | None:
    """How a variant's grid was made, recorded in its settings.json: the superres section for sr,
    the interpolation (method, axes, factor; mask by nearest neighbour as for sr) for interp."""
    if variant == "sr":
        return config["superres"]
    if variant == "interp":
        sr = config["superres"]
        return {"method": INTERP_METHOD, "axes": list(sr["axes"]), "factor": sr["factor"],
                "mask": "nearest neighbour"}
    return None


def radiomics_models(config: dict[str, Any]) -> list[str]:
    """``radiomics_<variant>`` per variant, and with clinical covariates ``clinical`` and
    ``combined_<variant>`` (oncoflow.radiomics.models); empty when the branch is off."""
    if not radiomics_active(config):
        return []
    rad = config["radiomics"]
    return radiomics_model_names(list(rad.get("variants", ["original"])), list(rad.get("clinical", [])))


def check_radiomics_config(config: dict[str, Any]) -> None:
    """Cross-references of the radiomics and superres sections (schema-valid config)."""
    if not radiomics_active(config):
        return
    rad = config["radiomics"]
    modalities = list(config["ingest"]["modalities"])
    modality = radiomics_modality(config)
    if modality not in modalities:
        raise ConfigError(f"config: radiomics.modality: unknown modality {modality!r} "
                          f"(ingest.modalities defines {', '.join(modalities)})")
    settings = rad.get("settings") or {}
    if settings.get("normalisation") == "standardisation" and settings.get("lower_bound", 0.0) >= 0:
        raise ConfigError("config: radiomics.settings.lower_bound: with normalisation 'standardisation' "
                          "intensities are z-scores; a lower bound >= 0 would drop half of the tumor "
                          "(use e.g. -3 with bin_width 0.1)")
    chosen = set((config.get("fusion") or {}).get("models") or [])
    clash = chosen & set(radiomics_models(config))
    if clash:
        raise ConfigError(f"config: fusion.models: {sorted(clash)[0]!r} is a radiomics model; late fusion "
                          "combines CNN models (the radiomics branch has its own combined model)")
    if "sr" in rad.get("variants", []):
        sr = config.get("superres") or {}
        checkpoint = sr.get("checkpoint")
        if checkpoint and not Path(checkpoint).is_file():
            raise ConfigError(f"config: superres.checkpoint: {checkpoint} not found (null trains the "
                              "generator on the cohort)")


def harmonisation_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``harmonisation`` section (schema defaults filled) for the feature models' fit rules."""
    return dict(config.get("harmonisation") or {"method": "none"})


def harmonised_models(config: dict[str, Any], baseline: Sequence[str], radiomics: Sequence[str]) -> list[str]:
    """The models whose features ComBat harmonises (the one decision): with harmonisation on, the
    baseline and every radiomics model but ``clinical`` (its covariates are not image features)."""
    if harmonisation_settings(config).get("method", "none") == "none":
        return []
    return [*baseline, *(m for m in radiomics if m != "clinical")]


def check_harmonisation_config(config: dict[str, Any]) -> None:
    """ComBat harmonises sites: it needs the column that names them."""
    method = harmonisation_settings(config).get("method", "none")
    if method != "none" and site_column(config) is None:
        raise ConfigError(f"config: harmonisation.method {method!r} needs cohort.site (the sample-sheet column "
                          "naming each subject's site); set it, or harmonisation.method: none")


def site_column(config: dict[str, Any]) -> str | None:
    """cohort.site: the sample-sheet column naming each subject's site (None: one site)."""
    return (config.get("cohort") or {}).get("site")


# Image stage each radiomics variant reads: co-registered, x2 by cubic B-spline (interp, the
# control for sr) or x2 by the super-resolution (sr).
RADIOMICS_STAGE = {"original": "coreg", "interp": "interp", "sr": "superres"}
