"""What the reports (methods.md, the checklists, the model card) may state about a run, resolved once
from the validated config and the plan: the models that ran, the fusions and their inputs, the
pretraining jobs, the recalibration of each model, the harmonised models, the validation scheme
and what the authors declared (``study.declarations``). The reporting rules get it as a param
(``StudyPlan.report_facts``; ``common.smk``: ``REPORT_FACTS``, as :meth:`ReportFacts.params`); the reports read it and take no defaults of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from oncoflow.config import (
    ModelSpec,
    PretrainJob,
    expand_models,
    expand_pretrain,
    fusion_inputs,
    harmonised_models,
    radiomics_models,
)
from oncoflow.metrics.choices import model_recalibration
from oncoflow.models.catalog import DEEP_VARIANTS


@dataclass(frozen=True)
class ReportFacts:
    """The run as the reports describe it. ``config`` is the resolved config (schema defaults
    filled): the reports quote its settings as they are; every decision derived from it (which
    models ran, which were fused, harmonised or recalibrated how) is a field here."""

    config: dict[str, Any]
    cnn: dict[str, ModelSpec]  # the CNN models (expand_models)
    fusion_methods: tuple[str, ...]
    fused: tuple[str, ...]  # the CNN models late fusion combines ([] without fusion)
    pretrain_jobs: dict[tuple[str, str], PretrainJob]
    radiomics: tuple[str, ...]  # radiomics_<variant>, clinical, combined_<variant>
    baseline: tuple[str, ...]  # ("baseline",) or ()
    harmonised: tuple[str, ...]  # the models whose features ComBat harmonised (the one decision)
    recalibration: dict[str, str]  # model -> prior_shift / logistic / none (oncoflow.metrics.recalibration)
    scheme: str  # cv.scheme
    folds: int  # cv.folds (leave_one_site_out: the tested sites are in folds/splits.tsv)
    repeats: int  # cv.repeats
    site: str | None  # cohort.site: the sheet column naming each subject's site, or None
    qc_inspected: bool  # study.declarations.qc_inspected: the authors looked at every QC montage
    comparisons_prespecified: bool  # study.declarations.comparisons_prespecified
    #: the patients whose baseline / IBSI radiomics features were computed in their cross-fitted
    #: predicted mask (segment.feature_mask; StudyPlan.predicted_feature_subjects), the others' in the manual one
    predicted_feature_subjects: tuple[str, ...] = ()

    @property
    def models(self) -> list[str]:
        """Every evaluated model: CNNs, late fusions, radiomics / clinical, baseline (in this order)."""
        return [*self.cnn, *(f"fusion_{m}" for m in self.fusion_methods), *self.radiomics, *self.baseline]

    @property
    def masked_feature_models(self) -> list[str]:
        """The models whose features are computed inside a tumor mask (segment.feature_mask): the IBSI
        radiomics and combined models of image variants, and the baseline (deep features read the crops)."""
        return [*(m for m in self.radiomics if m != "clinical" and m.split("_", 1)[1] not in DEEP_VARIANTS),
                *self.baseline]

    def params(self) -> dict[str, Any]:
        """As a rule's params: plain dicts and tuples, which Snakemake compares to rerun a job whose
        facts changed (an object would be left out of that comparison); :meth:`from_params` reads it."""
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ReportFacts:
        fields = dict(params)
        fields["cnn"] = {name: ModelSpec(**spec) for name, spec in fields["cnn"].items()}
        fields["pretrain_jobs"] = {key: PretrainJob(**job) for key, job in fields["pretrain_jobs"].items()}
        return cls(**fields)


def report_facts(config: dict[str, Any], baseline: Sequence[str],
                 predicted_features: Sequence[str] = ()) -> ReportFacts:
    """The facts of a run of ``config`` (validated by the schema, defaults filled); ``baseline``:
    the plan's baseline models (``StudyPlan.baseline_models``: they depend on the sample sheet);
    ``predicted_features``: ``StudyPlan.predicted_feature_subjects`` (they depend on it too)."""
    cnn = expand_models(config)
    methods = tuple(config["fusion"]["methods"])
    radiomics = tuple(radiomics_models(config))
    declared = config["study"]["declarations"]
    return ReportFacts(
        config=config, cnn=cnn, fusion_methods=methods,
        fused=tuple(fusion_inputs(config, cnn)) if methods else (),
        pretrain_jobs=expand_pretrain(config, cnn), radiomics=radiomics, baseline=tuple(baseline),
        harmonised=tuple(harmonised_models(config, baseline, radiomics)),
        recalibration=model_recalibration(config, cnn), scheme=config["cv"]["scheme"],
        folds=int(config["cv"]["folds"]), repeats=int(config["cv"]["repeats"]), site=config["cohort"]["site"],
        qc_inspected=bool(declared["qc_inspected"]),
        comparisons_prespecified=bool(declared["comparisons_prespecified"]),
        predicted_feature_subjects=tuple(predicted_features),
    )
