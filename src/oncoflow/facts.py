"""What a study ran, resolved once: the record the reports describe (methods.md, the model card,
the checklists) instead of re-reading the raw config with defaults of their own.

``oncoflow.plan.StudyPlan.facts`` builds it from the plan's own decisions (the models, what is
fused, which models ComBat harmonised, the folds, the recalibration per model); the report rules
get it as params (``to_params``: plain JSON types, so a change reruns them) and a report script
reads it back with ``StudyFacts.from_params``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from oncoflow.config import ModelSpec


@dataclass(frozen=True)
class StudyFacts:
    study: str
    label: str  # study.label: the sample-sheet column of the outcome
    positive: str  # study.positive: its positive class, as text
    cnn: dict[str, ModelSpec]  # every CNN model (oncoflow.config.expand_models), in config order
    fusion_methods: tuple[str, ...]  # fusion.methods: models fusion_<method>
    fused: tuple[str, ...]  # the CNNs that late fusion combines (empty without fusion)
    radiomics_models: tuple[str, ...]  # radiomics_<variant>, clinical, combined_<variant> (empty: branch off)
    radiomics_variants: tuple[str, ...]
    radiomics_modality: str | None  # None when the radiomics branch is off
    clinical: tuple[str, ...]  # radiomics.clinical: the covariate columns (empty: branch off)
    baseline_models: tuple[str, ...]  # ("baseline",) or () (switched off, or a subject lacks a tumor mask)
    model_names: tuple[str, ...]  # every evaluated model, in the order of the metrics table
    pretrain: dict[str, dict[str, Any]]  # "<pretrain job>/<model>" -> the pretrain rule's params
    recalibration: dict[str, str]  # model -> how its scores became risks (oncoflow.metrics.recalibration)
    harmonisation: dict[str, Any]  # the harmonisation section (method, unseen_site, min_site_patients)
    harmonised_models: tuple[str, ...]  # the models whose features ComBat harmonised: the one decision
    site: str | None  # cohort.site: the sheet column naming each patient's site
    scheme: str  # cv.scheme
    folds: int  # cv.folds (the configured k; leave_one_site_out makes folds_per_repeat instead)
    folds_per_repeat: int  # folds, or under leave_one_site_out the number of sites tested
    repeats: int  # cv.repeats
    fold_numbers: tuple[int, ...]  # every fold that ran, numbered globally (repeat * folds_per_repeat + k)
    test_sites: tuple[str, ...]  # leave_one_site_out: the site fold k tested; empty for the other schemes
    seed: int  # cv.seed
    val_fraction: float  # cv.val_fraction
    min_site_size: int  # cv.min_site_size
    internal_cohorts: tuple[str, ...]  # cohort.internal
    external_cohorts: tuple[str, ...]  # cohort.external

    @property
    def harmonised(self) -> bool:
        """Whether ComBat harmonised any model's features (harmonisation on, and a feature model ran)."""
        return bool(self.harmonised_models)

    @property
    def baseline(self) -> bool:
        return bool(self.baseline_models)

    def to_params(self) -> dict[str, Any]:
        """Plain JSON types (lists, dicts, str, numbers) for a rule's params."""
        out = asdict(self)
        out["cnn"] = {name: {"name": s.name, "architecture": s.architecture, "modalities": list(s.modalities),
                             "params": s.params} for name, s in self.cnn.items()}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> StudyFacts:
        """The record from ``to_params``' dict (a report script's ``snakemake.params``)."""
        values = dict(params)
        values["cnn"] = {name: ModelSpec(s["name"], s["architecture"], tuple(s["modalities"]), dict(s["params"]))
                         for name, s in params["cnn"].items()}
        for f in fields(cls):
            if f.type.startswith("tuple"):
                values[f.name] = tuple(values[f.name])
        return cls(**values)
