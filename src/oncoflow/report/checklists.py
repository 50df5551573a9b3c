"""Filled reporting checklists (CLAIM 2024, TRIPOD+AI 2024, CLEAR): each item is ``filled`` (a sentence
written from this run and the path of the evidence file, relative to the results folder),
``author`` (only the authors can say: ethics, funding, intended use, ...) or ``not applicable``
(with the reason). Item numbers and topics: oncoflow.report.checklist_items."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from oncoflow.models.catalog import ARCH_3D
from oncoflow.report.checklist_items import CHECKLISTS
from oncoflow.report.explanations import explanation_text
from oncoflow.run_facts import ReportFacts
from oncoflow.segment.crossfit import feature_mask_source
from oncoflow.segment.settings import segment_settings
from oncoflow.metrics.choices import MIN_CALIBRATION_EVENTS
from oncoflow.report.selection import CRITERIA, selection_text

FILLED, AUTHOR, NA = "filled", "author", "not applicable"
CHECKLIST_COLUMNS = ["item", "section", "topic", "status", "text", "evidence"]
#: metrics.tsv columns of the threshold metrics' confidence intervals (an item asking for them is
#: filled only when the table has them)
THRESHOLD_CIS = tuple(f"{m}_ci_{end}" for m in ("sensitivity", "specificity", "ppv", "npv") for end in ("low", "high"))


@dataclass(frozen=True)
class RunFacts:
    """What the checklists cite: the plan's facts (``plan``) and the run's records."""

    plan: ReportFacts
    n_internal: int
    n_internal_positive: int
    n_external: int
    n_flagged: int
    models: list[str]
    n_failures: int
    metric_columns: tuple[str, ...] = ()  # the columns of tables/metrics.tsv
    #: tables/selection.tsv (the epochs each CNN fold model kept); None without CNNs or when unread
    selection: pd.DataFrame | None = None
    #: "model (cohort)" whose calibration metrics.tsv marks not assessable (too few events)
    unassessable: tuple[str, ...] = ()
    #: tables/explanation_sanity.tsv (the maps' randomisation check); None when the run made no maps
    explanations: pd.DataFrame | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config (the settings the items quote as they are)."""
        return self.plan.config

    @property
    def cnn(self) -> bool:
        return bool(self.plan.cnn)

    @property
    def threshold_cis(self) -> bool:
        """Whether metrics.tsv gives sensitivity, specificity, PPV and NPV with confidence intervals."""
        return set(THRESHOLD_CIS) <= set(self.metric_columns)

    @property
    def balanced(self) -> bool:
        """The internal cohort has as many positive as negative patients."""
        return 2 * self.n_internal_positive == self.n_internal

    @property
    def external(self) -> bool:
        return self.n_external > 0

    @property
    def site(self) -> str | None:
        """The sample-sheet column naming each patient's site (cohort.site), or None."""
        return self.plan.site

    @property
    def scheme(self) -> str:
        return self.plan.scheme

    @property
    def harmonised(self) -> tuple[str, ...]:
        """The run's models whose features ComBat harmonised (the plan's decision)."""
        return self.plan.harmonised

    @property
    def cv_words(self) -> str:
        """The cross-validation that ran (cv.scheme)."""
        folds = self.plan.folds
        return {"stratified": f"{folds}-fold patient-level cross-validation",
                "site_grouped": f"{folds}-fold patient-level cross-validation grouped by site",
                "leave_one_site_out": "leave-one-site-out cross-validation"}[self.scheme]

    @property
    def tested(self) -> str:
        """Who cross-validation tested."""
        return "every patient of a tested site" if self.scheme == "leave_one_site_out" else "every internal patient"


def run_facts(plan: ReportFacts, splits: pd.DataFrame, qc: pd.DataFrame, metrics: pd.DataFrame,
              failures: pd.DataFrame, selection: pd.DataFrame | None = None,
              explanations: pd.DataFrame | None = None) -> RunFacts:
    first = splits[splits["fold"] == splits["fold"].min()]
    internal, external = first[first["role"] != "external"], first[first["role"] == "external"]
    return RunFacts(plan, len(internal), int(internal["label"].sum()), len(external),
                    int((qc["flag"].fillna("") != "").sum()), list(dict.fromkeys(metrics["model"])), len(failures),
                    tuple(metrics.columns), selection, unassessable_calibration(metrics), explanations)


Entry = tuple[str, str, str]  # status, text, evidence
Rule = Callable[[RunFacts], Entry]


def _sentence(text: str) -> str:
    """``text`` with its first letter capitalised (the rest as written) and a full stop."""
    return text[:1].upper() + text[1:] + "."


def _author(why: str) -> Rule:
    return lambda f: (AUTHOR, why, "")


def _design(f: RunFacts) -> Entry:
    ext = " and an external test cohort" if f.external else ""
    return FILLED, f"Development of {len(f.models)} models with {f.cv_words}{ext}.", "methods.md"


def _sources(f: RunFacts) -> Entry:
    ext = f"; external: {f.n_external} patients" if f.external else ""
    return (FILLED, (f"Sample sheet {f.config['cohort']['samples']}: {f.n_internal} internal patients "
                    f"({f.n_internal_positive} positive){ext}."), "provenance.json (sample sheet checksum)")


def _preprocessing(f: RunFacts) -> Entry:
    pre = f.config["preprocess"]
    steps = ["N4 bias correction" if pre["n4"]["activate"] else "no bias correction",
             "no registration (resampled)" if pre["registration"]["transform"] == "none"
             else f"{pre['registration']['transform']} registration to {pre['reference']}",
             f"brain extraction: {pre['brain_extraction']['backend']}"]
    if f.cnn:
        steps.append(f"{f.config['crop']['size']}-pixel tumor crops")
    return FILLED, "; ".join(steps) + ".", "methods.md"


def _clinical(f: RunFacts) -> list[str]:
    """The clinical covariates of the radiomics branch (radiomics.clinical; none without the branch)."""
    return list(f.config["radiomics"]["clinical"]) if f.plan.radiomics else []


def _outcome(f: RunFacts) -> Entry:
    study = f.config["study"]
    return (FILLED, (f"Outcome: the sample sheet's `{study['label']}` column, {study['positive']} being the positive "
                     "class and every other value the negative one; how and when it was assessed is the authors'."),
            "provenance.json (resolved config)")


def _model_inputs(f: RunFacts) -> str:
    """Each model with what it reads."""
    parts = [f"{name}: {'+'.join(spec.modalities)} crops" for name, spec in f.plan.cnn.items()]
    if f.plan.fused:
        parts += [f"fusion_{m}: the probabilities of {', '.join(f.plan.fused)}" for m in f.plan.fusion_methods]
    parts += [f"{name}: {'the clinical covariates' if name == 'clinical' else 'radiomic features of the ' + f.config['radiomics']['modality'] + ' image'}"
              + (" and the clinical covariates" if name.startswith("combined_") else "") for name in f.plan.radiomics]
    if f.plan.baseline:
        parts.append("baseline: log tumor volume and tumor intensity statistics per modality")
    return "; ".join(parts)


def _predictors(f: RunFacts) -> Entry:
    return (FILLED, f"Predictors per model: {_model_inputs(f)}. Why these were chosen is the authors'.", "methods.md")


def _predictor_definitions(f: RunFacts) -> Entry:
    clinical = _clinical(f)
    extra = (f"; clinical covariates: the sheet's columns {', '.join(clinical)}, as recorded" if clinical else "")
    return (FILLED, (f"Image predictors: the MR series {', '.join(f.config['ingest']['modalities'])}, chosen per subject "
                     "by the regular expressions of ingest.modalities on the DICOM series descriptions (or given as "
                     "NIfTI files), and the sheet's tumor mask; measured on each centre's scanner (protocol: the "
                     f"authors'){extra}."), "provenance.json (resolved config)")


def _predictor_handling(f: RunFacts) -> Entry:
    parts = []
    if f.cnn:
        crop = f.config["crop"]
        parts.append(f"CNN inputs: {crop['size']}-pixel tumor-centred crops, intensities normalised within the "
                     "brain (or foreground) mask of each patient")
    combat = f"ComBat site harmonisation of {', '.join(f.harmonised)}; " if f.harmonised else ""
    if f.plan.radiomics:
        parts.append(f"radiomic features ({', '.join(m for m in f.plan.radiomics if m != 'clinical')}): median imputation, variance filter, "
                     "standardisation and correlation filter")
    if f.plan.baseline:
        parts.append("baseline features: standardisation")
    if combat or f.plan.radiomics or f.plan.baseline:
        parts.append(f"{combat}every step fitted on each fold's training patients only")
    return FILLED, _sentence("; ".join(parts)), "methods.md"


def _subsets(f: RunFacts) -> Entry:
    return (FILLED, (f"Series used: {', '.join(f.config['ingest']['modalities'])}; every subject of the sample "
                     "sheet enters the analysis (no subset drawn)."), "reporting/flow.tsv")


def _deid(f: RunFacts) -> Entry:
    return FILLED, "DICOM converted with dcm2niix and de-identified; NIfTI header text blanked.", "methods.md"


def _missing(f: RunFacts) -> Entry:
    clinical = _clinical(f)
    text = "A missing image or mask stops the run naming the subject (no imputation of images)"
    if clinical:
        text += "; missing clinical values were imputed with the training patients' median within each fold"
    return FILLED, text + ".", "methods.md"


def _partitions(f: RunFacts) -> Entry:
    cv, scheme = f.config["cv"], f.scheme
    split = {"stratified": f"{f.plan.folds} stratified folds",
             "site_grouped": f"{f.plan.folds} stratified folds grouped by site (a site's patients in one test fold)",
             "leave_one_site_out": "leave-one-site-out folds (sites too small or single-class only trained on)"}[scheme]
    return (FILLED, (f"{split} (seed {cv['seed']}), {cv['val_fraction']:.0%} of each training "
                    f"fold as inner validation; {f.tested} tested once."), "folds/splits.tsv")


def _disjoint(f: RunFacts) -> Entry:
    return FILLED, "Partitions are disjoint at the patient level (one row per patient per fold).", "folds/splits.tsv"


def _model(f: RunFacts) -> Entry:
    return FILLED, f"Models: {', '.join(f.models)}.", "methods.md"


def _software(f: RunFacts) -> Entry:
    return FILLED, "Package versions, git commit and environment files are recorded.", "provenance.json"


def _init(f: RunFacts) -> Entry:
    if not f.cnn:
        return NA, "No neural-network classifier: logistic models fitted from scratch in each fold.", "methods.md"
    inits = sorted({f"{m['architecture']}: {m['init']}" for m in f.config["models"]})
    return FILLED, f"Initialisation: {', '.join(inits)}.", "methods.md"


def _training(f: RunFacts) -> Entry:
    if not f.cnn:
        sel = f.config["radiomics"]["selection"]
        return FILLED, f"LASSO penalty grid {sel['c_grid']}, {sel['inner_folds']}-fold inner CV.", "methods.md"
    runs = sorted({f"{m['architecture']}: lr {m['lr']:g}, batch {m['batch_size']}, "
                   f"up to {m['epochs']} epochs, {m['imbalance']}" for m in f.config["models"]})
    return FILLED, "; ".join(runs) + "; flips and intensity scaling as augmentation.", "methods.md"


def _building(f: RunFacts) -> Entry:
    """Model type, building, tuning and internal validation (TRIPOD+AI 12c)."""
    kinds = []
    if f.cnn:
        kinds.append(f"CNNs ({', '.join(sorted({s.architecture for s in f.plan.cnn.values()}))}) with the epoch of "
                     "best inner-validation AUC kept")
    if f.plan.fusion_methods:
        kinds.append(f"late fusion ({', '.join(f.plan.fusion_methods)})")
    if f.plan.radiomics:
        kinds.append(f"LASSO logistic models ({', '.join(f.plan.radiomics)}) with the penalty chosen by inner "
                     "cross-validation")
    if f.plan.baseline:
        kinds.append("an L2-penalised logistic baseline")
    return FILLED, _sentence(f"{'; '.join(kinds)}; internal validation by {f.cv_words}"), "methods.md"


def _selection(f: RunFacts) -> Entry:
    if not f.cnn:
        return (FILLED, "Final model per fold: the LASSO penalty chosen by inner cross-validation on the training "
                "patients.", "methods.md")
    if text := selection_text(f.selection):
        return FILLED, f"Final model per fold: {text[0].lower()}{text[1:]}", "tables/selection.tsv"
    train = f.config.get("train") or {}
    return FILLED, (f"Final model per fold: the epoch with {CRITERIA[train.get('select_on', 'val_loss')]} "
                    f"({train.get('selection', 'inner_val')} selection)."), "methods.md"


def _ensemble(f: RunFacts) -> Entry:
    parts = []
    if f.plan.fusion_methods:
        parts.append(f"late fusion ({', '.join(f.plan.fusion_methods)})")
    if f.external:
        parts.append("external patients scored by the mean of the fold models")
    if not parts:
        return NA, "No ensembling: each patient is scored by one fold model.", ""
    return FILLED, "Ensembling: " + "; ".join(parts) + ".", "methods.md"


def unassessable_calibration(metrics: pd.DataFrame) -> tuple[str, ...]:
    if "calibration_assessable" not in metrics.columns:
        return ()
    bad = metrics[metrics["calibration_assessable"].astype(str).str.lower() != "true"]
    return tuple(f"{m} ({c})" for m, c in zip(bad["model"], bad["cohort"]))


def _metrics(f: RunFacts) -> Entry:
    text = ("AUC, sensitivity, specificity, PPV, NPV and accuracy (Wilson CIs), Brier score and calibration "
            "intercept and slope (tables); decision and calibration curves (figures).")
    if f.unassessable:
        text += (f" Calibration intercept and slope not assessable (fewer than {MIN_CALIBRATION_EVENTS} patients of "
                 f"the smaller class; Collins et al. 2016): {', '.join(f.unassessable)}.")
    return FILLED, text, "tables/metrics.tsv; figures/"


def _intervals(f: RunFacts) -> str:
    """Which metrics carry confidence intervals, and by which method."""
    ev = f.config["evaluate"]
    level = f"{ev['ci_level']:.0%}"
    text = (f"{level} CIs of the AUC ({ev['ci_method']}), the Brier score (bootstrap) and the calibration intercept "
            "and slope (Wald)")
    if f.threshold_cis:
        text += ", and of sensitivity, specificity, PPV and NPV (Wilson)"
    return text


def _uncertainty(f: RunFacts) -> Entry:
    ev = f.config["evaluate"]
    return (FILLED, _sentence(f"{_intervals(f)}; pairwise DeLong tests with {ev['correction']} correction"),
            "tables/metrics.tsv; tables/comparisons.tsv")


def _uncertainty_only(f: RunFacts) -> Entry:
    return FILLED, _sentence(_intervals(f)), "tables/metrics.tsv"


def _comparison_tests(f: RunFacts) -> Entry:
    ev = f.config["evaluate"]
    return (FILLED, (f"Models compared pairwise on the same patients with DeLong's test, p-values corrected by "
                     f"{ev['correction']} within the configured family and separately over all pairs."),
            "tables/comparisons.tsv")


def _external(f: RunFacts) -> Entry:
    if not f.external:
        return NA, "No external cohort in this study's config (cohort.external is empty).", ""
    return FILLED, f"External cohort of {f.n_external} patients, never used for training or thresholds.", \
        "tables/metrics.tsv"


def _external_or_cv(f: RunFacts) -> Entry:
    ext = f" and on the external cohort of {f.n_external} patients" if f.external else "; no external cohort"
    return FILLED, f"Internal testing by {f.cv_words}{ext}.", "folds/splits.tsv"


def _internal(f: RunFacts) -> Entry:
    return FILLED, _sentence(f"{f.cv_words}; {f.tested} scored once by the fold model that never saw it"), \
        "tables/metrics.tsv"


def _flow(f: RunFacts) -> Entry:
    sites = "; per site, the patients tested and those only trained on" if f.site else ""
    return FILLED, f"Sample sheet to evaluation; {f.n_flagged} subject(s) QC-flagged and kept{sites}.", \
        "reporting/flow.tsv"


def _characteristics(f: RunFacts) -> Entry:
    site = ", site" if f.site else ""
    tests = ("tests across cohorts and across the site-grouped folds" if f.scheme != "stratified"
             else "tests across cohorts only (random folds are described, not tested)")
    return FILLED, f"Label{site}, age, sex and clinical columns per cohort and test fold; {tests}.", \
        "reporting/characteristics.tsv"


def _heterogeneity(f: RunFacts) -> Entry:
    if not f.site:
        return AUTHOR, ("No cohort.site: the analysis did not account for centres; describe any clustering of "
                        "the data."), ""
    parts = [f"sites from the sample sheet's `{f.site}` column", f"validation: {f.cv_words}",
             "AUC with its CI, n and positives per site on the out-of-fold predictions"]
    if f.harmonised:
        parts.append(f"ComBat harmonisation of the features of {', '.join(f.harmonised)} fitted within each fold "
                     "on the patients its model was fitted on")
    return FILLED, _sentence("; ".join(parts)), "tables/metrics_by_site.tsv; methods.md"


def _heterogeneity_results(f: RunFacts) -> Entry:
    if not f.site:
        return AUTHOR, "No cohort.site: no performance per centre was computed; report any heterogeneity found.", ""
    return FILLED, "AUC with its CI, n and positives per model and site, and a per-site figure.", \
        "tables/metrics_by_site.tsv; figures/sites.png"


def _performance(f: RunFacts) -> Entry:
    return FILLED, "Pooled cross-validation" + (" and external" if f.external else "") + \
        " metrics per model, and per fold.", "tables/metrics.tsv; tables/metrics_per_fold.tsv"


def _performance_uncertainty(f: RunFacts) -> Entry:
    """CLAIM 37: the metrics with their statistical uncertainty."""
    where = "cross-validation" + (" and the external cohort" if f.external else "")
    return FILLED, _sentence(f"{_intervals(f)} per model for {where}; per-fold AUCs beside them"), \
        "tables/metrics.tsv; tables/metrics_per_fold.tsv"


def _threshold_precision(f: RunFacts) -> Entry:
    """CLAIM 38: sensitivity, specificity, PPV and NPV with their precision; filled only when
    metrics.tsv has their confidence intervals."""
    if not f.threshold_cis:
        return AUTHOR, ("Sensitivity, specificity, PPV and NPV at each model's threshold are in tables/metrics.tsv "
                        "without confidence intervals: add them."), ""
    return FILLED, "Sensitivity, specificity, PPV and NPV at each model's threshold with their CIs.", \
        "tables/metrics.tsv"


def _performance_with_cis(f: RunFacts) -> Entry:
    """TRIPOD+AI 23a: performance with confidence intervals (threshold metrics included) and key
    subgroups; filled only when metrics.tsv has the threshold metrics' intervals."""
    if not f.threshold_cis:
        return AUTHOR, ("AUC, Brier score and calibration have CIs in tables/metrics.tsv, sensitivity, specificity, "
                        "PPV and NPV have none: add them, and any key subgroups."), ""
    sites = "; per site in tables/metrics_by_site.tsv" if f.site else ""
    return FILLED, _sentence(f"{_intervals(f)}, pooled and per fold{sites}; key subgroups are the authors'"), \
        "tables/metrics.tsv"


def _failures(f: RunFacts) -> Entry:
    maps = (" and, for the CNNs' cross-validation patients, the explanation maps of the fold model that scored them"
            if f.explanations is not None else "")
    return FILLED, f"{f.n_failures} misclassifications (model x patient) listed with QC flags and montages{maps}.", \
        "reporting/failures.md"


def _explainability(f: RunFacts) -> Entry:
    """CLAIM 2024 item 31 (methods of explainability or interpretability, and how they were validated):
    the maps and their randomisation check as tables/explanation_sanity.tsv has them."""
    if not f.cnn:
        return NA, "No CNN in this run: explanation maps are made for CNN fold models only.", ""
    settings = f.config["explain"]
    if not settings["activate"]:
        return AUTHOR, "No explainability method ran in this pipeline (explain.activate is off); describe any " \
                       "done elsewhere.", ""
    text = explanation_text(f.explanations, settings, True)
    if f.explanations is None:
        return FILLED, text, "methods.md"
    return FILLED, text, "tables/explanation_sanity.tsv; explain/<model>/fold<k>/maps"


def _sharing(what: str) -> Rule:
    """An open-science item: what the run recorded (provenance.json); sharing it is the authors'."""
    return lambda f: (AUTHOR, what, "provenance.json")


_code = _sharing("Code: oncoflow at the git commit in provenance.json; the data-availability statement and the "
                 "repository link are the authors'.")


def _imbalance(f: RunFacts) -> Entry:
    if not f.cnn:
        return AUTHOR, "No class-imbalance correction is configured for the logistic models; say so.", ""
    kinds = sorted({m["imbalance"] for m in f.config["models"]})
    if f.balanced:
        return FILLED, (f"The internal cohort is balanced ({f.n_internal_positive} of {f.n_internal} positive): "
                        f"no imbalance to correct (configured: {', '.join(kinds)}, whose weights are close to 1 "
                        "here)."), "reporting/flow.tsv"
    return FILLED, (f"Class imbalance ({f.n_internal_positive} of {f.n_internal} positive) handled by "
                    f"{', '.join(kinds)}."), "methods.md"


def _imbalance_features(f: RunFacts) -> Entry:
    """CLEAR 30: the feature models are plain logistic models."""
    if f.balanced:
        return FILLED, (f"The internal cohort is balanced ({f.n_internal_positive} of {f.n_internal} positive); the "
                        "feature models use no class weighting."), "reporting/flow.tsv"
    return AUTHOR, (f"{f.n_internal_positive} of {f.n_internal} internal patients are positive; the feature models "
                    "use no class weighting: say so."), ""


def _output(f: RunFacts) -> Entry:
    thr = f.config["evaluate"]["threshold"]
    how = "Youden's J on each fold's inner-validation patients" if thr == "youden" else f"fixed at {thr}"
    return FILLED, f"Output: probability of the positive class; threshold {how}.", "tables/predictions.tsv"


def _prediction(f: RunFacts) -> Entry:
    """TRIPOD+AI 12g: how a patient's prediction is computed."""
    parts = ["each internal patient is scored by the fold model that held it out"]
    if any(s.architecture not in ARCH_3D for s in f.plan.cnn.values()):
        parts.append(f"a 2D CNN's probability is the mean over the {f.config['crop']['slices']} axial slices of "
                     "largest tumor area")
    if f.external:
        parts.append("an external patient gets the mean probability of the fold models")
    return FILLED, _sentence("; ".join(parts)), "tables/predictions.tsv"


def _train_vs_eval(f: RunFacts) -> Entry:
    if not f.external:
        return NA, "Internal cross-validation only: development and test patients come from one sheet.", ""
    return FILLED, "External patients went through the same preprocessing; compare their characteristics.", \
        "reporting/characteristics.tsv"


def _train_vs_eval_results(f: RunFacts) -> Entry:
    if not f.external:
        return NA, "No external cohort: the test folds' characteristics are side by side in Table 1.", ""
    return FILLED, "Internal and external cohorts side by side, with tests of their differences.", \
        "reporting/characteristics.tsv"


def _events(f: RunFacts) -> Entry:
    return FILLED, (f"{f.n_internal} internal patients, {f.n_internal_positive} with the outcome; per fold and role "
                   "in the flow table."), "reporting/flow.tsv"


def _specification(f: RunFacts) -> Entry:
    what = "fold checkpoints (models/<model>/fold<k>/checkpoint.pt)" if f.cnn else \
        "fold coefficients (models/<model>/fold<k>/coefficients.tsv)"
    return FILLED, f"The fitted models are the {what}.", "models/"


def _poor_inputs(f: RunFacts) -> Entry:
    return FILLED, "Automatic QC flags each subject's images (kept and listed); unreadable inputs stop the run.", \
        "qc/qc.tsv"


def _recalibration(f: RunFacts) -> Entry:
    """TRIPOD+AI 12f: recalibration is part of each fold's development; nothing is updated later."""
    groups: dict[str, list[str]] = {}
    for name in f.plan.models:
        groups.setdefault(f.plan.recalibration[name], []).append(name)
    words = {"prior_shift": "prior-shift correction", "logistic": "logistic recalibration on the inner-validation "
             "patients", "none": "none"}
    parts = [f"{words[k]}: {', '.join(v)}" for k, v in groups.items()]
    return FILLED, _sentence("Recalibration within each fold's development (" + "; ".join(parts)
                             + "); no model was updated after its evaluation"), "methods.md"


def _no_updating(f: RunFacts) -> Entry:
    return NA, ("No model was updated after its evaluation: none was refitted or recalibrated on test or external "
                "patients."), ""


def _radiomics_settings(f: RunFacts) -> dict[str, Any]:
    return f.config["radiomics"]["settings"]


def _rad_variants(f: RunFacts) -> list[str]:
    return list(f.config["radiomics"]["variants"])


def _segmentation(f: RunFacts) -> Entry:
    text = ("3D lesion masks from the sample sheet (tumor_mask column), carried onto the reference grid; "
            "who drew them, how, and with which software is the authors'.")
    seg = segment_settings(f.config)
    if seg.crop_mask != "manual":
        text += " The CNN crops used the workflow's cross-fitted predicted masks (segment.crop_mask)."
    if seg.active:
        source = feature_mask_source(seg.feature_mask, list(f.plan.predicted_feature_subjects),
                                     f.n_internal + f.n_external)
        text += f" The features were computed from {source} (segment.feature_mask)."
    return AUTHOR, text, "provenance.json (mask checksums)"


def _preprocessing_radiomics(f: RunFacts) -> Entry:
    n4 = "N4 bias correction" if f.config["preprocess"]["n4"]["activate"] else "no bias correction"
    return FILLED, f"{n4}; resampled onto the reference image; features read uncropped.", "methods.md"


def _resampling(f: RunFacts) -> Entry:
    spacing = _radiomics_settings(f).get("resampled_spacing")
    text = f"Resampled to {spacing} mm." if spacing else "Native grid, no resampling before extraction."
    if "sr" in _rad_variants(f):
        text += f" Variant sr: x{f.config['superres']['factor']} super-resolution along {', '.join(f.config['superres']['axes'])}."
    return FILLED, text, "radiomics/original/settings.json"


def _discretisation(f: RunFacts) -> Entry:
    st = _radiomics_settings(f)
    if st.get("discretisation") == "fixed_bin_number":
        text = f"Fixed bin number: {st['bin_number']} bins over each lesion's intensity range (from {st['lower_bound']:g})."
    else:
        text = f"Fixed bin width {st['bin_width']:g} from {st['lower_bound']:g}."
    return FILLED, text, "radiomics/original/settings.json"


def _image_types(f: RunFacts) -> Entry:
    return FILLED, f"Image variants: {', '.join(_rad_variants(f))} (no filtered images).", "radiomics/"


def _extraction(f: RunFacts) -> Entry:
    return FILLED, "MIRP; its version is recorded beside the features.", "radiomics/original/settings.json"


def _classes(f: RunFacts) -> Entry:
    return FILLED, "Shape, first order, GLCM, GLRLM, GLSZM, GLDM, NGTDM (IBSI).", "radiomics/original/features.tsv"


def _n_features(f: RunFacts) -> Entry:
    return FILLED, "One row per patient, one column per feature.", "radiomics/original/features.tsv"


def _defaults(f: RunFacts) -> Entry:
    return FILLED, "Every extraction setting, defaults included, is written beside the features.", \
        "radiomics/original/settings.json"


def _scaling(f: RunFacts) -> Entry:
    combat = "ComBat site harmonisation, then " if set(f.harmonised) & set(f.plan.radiomics) else ""
    return FILLED, _sentence(f"{combat}standardisation fitted on each fold's training patients"), "methods.md"


def _reduction(f: RunFacts) -> Entry:
    sel = f.config["radiomics"]["selection"]
    return (FILLED, (f"Variance filter ({sel['variance_threshold']:g}), correlation filter (|r| > "
                    f"{sel['correlation_threshold']:g}), LASSO, all within each training fold."),
            "models/<model>/fold<k>/coefficients.tsv")


def _algorithm(f: RunFacts) -> Entry:
    return FILLED, "L1-penalised logistic regression (rad-score); logistic clinical and combined models.", "methods.md"


def _tuning(f: RunFacts) -> Entry:
    sel = f.config["radiomics"]["selection"]
    return FILLED, f"Penalty from the grid {sel['c_grid']} by {sel['inner_folds']}-fold inner CV.", "methods.md"


def _versus_clinical(f: RunFacts) -> Entry:
    if not _clinical(f):
        return NA, "No clinical covariates configured (radiomics.clinical is empty).", ""
    return FILLED, "Clinical and combined models fitted in the same folds and compared with the radiomics models " \
        "by DeLong's test.", "methods.md"


def _versus_clinical_results(f: RunFacts) -> Entry:
    if not _clinical(f):
        return NA, "No clinical or combined model ran, so there is no comparison to report.", ""
    return FILLED, "AUC differences of the radiomics vs the clinical and combined models with their p-values.", \
        "tables/comparisons.tsv"


def _clinical_predictors(f: RunFacts) -> Entry:
    clinical = _clinical(f)
    if not clinical:
        return NA, "No non-radiomic predictors (radiomics.clinical is empty).", ""
    return FILLED, f"Clinical covariates: {', '.join(clinical)} (sample-sheet columns).", \
        "provenance.json (resolved config)"



def _feature_statistics(f: RunFacts) -> Entry:
    return FILLED, "Selected features and coefficients per fold.", "models/<model>/fold<k>/coefficients.tsv"


def _features_shared(f: RunFacts) -> Entry:
    return AUTHOR, "The feature tables exist in the results; sharing them is the authors' decision.", \
        "radiomics/original/features.tsv"


def _model_files(f: RunFacts) -> Entry:
    return AUTHOR, "Fold coefficients exist in the results; sharing them is the authors' decision.", \
        "models/<model>/fold<k>/coefficients.tsv"


AUTHOR_ONLY = "Only the authors can state this."
RULES: dict[str, dict[str, Rule]] = {
    "claim": {
        "1": _author("Title: name the AI method."), "2": _author("Abstract."),
        "3": _author("Clinical background and intended role."), "4": _author("Aims, objectives, hypotheses."),
        "5": _author("Prospective or retrospective collection."), "6": _design, "7": _sources,
        "8": _author("Inclusion and exclusion criteria that produced the sample sheet."), "9": _preprocessing,
        "10": _subsets, "11": _deid, "12": _missing,
        "13": _author("Scanner and sequence parameters of the images."),
        "14": _author("How the label was established."), "15": _author("Why this reference standard."),
        "16": _author("Who drew the tumor masks and assigned labels; qualifications."),
        "17": _author("How the test patients' labels and masks were obtained."),
        "18": _author("Inter-/intra-rater variability of labels and masks."),
        "19": _partitions, "20": _disjoint,
        "21": _author("Intended sample size and its basis (the run's counts are in reporting/flow.tsv)."),
        "22": _model, "23": _software, "24": _init, "25": _training, "26": _selection, "27": _ensemble,
        "28": _metrics, "29": _uncertainty,
        "30": _author("No robustness or sensitivity analysis ran in this pipeline; describe any done elsewhere."),
        "31": _explainability,
        "32": _internal, "33": _external, "34": _author("Trial registration, if any."), "35": _flow,
        "36": _characteristics, "37": _performance_uncertainty, "38": _threshold_precision, "39": _failures,
        "40": _author("Limitations."), "41": _author("Implications for practice."),
        "42": _author("Where the protocol can be read (methods.md and provenance.json give the technical details)."),
        "43": _code, "44": _author("Funding."),
    },
    "tripod_ai": {
        "1": _author("Title."), "2": _author("Abstract."), "3a": _author("Healthcare context."),
        "3b": _author("Target population and intended users."), "3c": _author("Known health inequalities."),
        "4": _author("Objectives."), "5a": _sources, "5b": _author("Dates of data collection."),
        "6a": _author("Setting and centres."), "6b": _author("Eligibility criteria."),
        "6c": _author("Treatments received."), "7": _preprocessing, "8a": _outcome,
        "8b": _author("Qualifications of whoever assessed the outcome."),
        "8c": _author("Blinding of the outcome assessment."),
        "9a": _predictors, "9b": _predictor_definitions, "9c": _author("Who drew the tumor masks; qualifications."),
        "10": _author("How the sample size was arrived at (counts: reporting/flow.tsv)."), "11": _missing,
        "12a": _partitions, "12b": _predictor_handling, "12c": _building,
        "12d": _heterogeneity, "12e": _metrics,
        "12f": _recalibration, "12g": _prediction, "13": _imbalance, "14": _author("Fairness approach."),
        "15": _output, "16": _train_vs_eval, "17": _author("Ethical approval and consent."),
        "18a": _author("Funding."), "18b": _author("Conflicts of interest."), "18c": _author("Protocol."),
        "18d": _author("Registration."), "18e": _author("Data sharing."), "18f": _code,
        "19": _author("Patient and public involvement."), "20a": _flow, "20b": _characteristics,
        "20c": _train_vs_eval_results, "21": _events, "22": _specification, "23a": _performance_with_cis,
        "23b": _heterogeneity_results, "24": _no_updating,
        "25": _author("Interpretation."), "26": _author("Limitations."), "27a": _poor_inputs,
        "27b": _author("User interaction and expertise."), "27c": _author("Future research."),
    },
    "clear": {
        "1": _author("Title."), "2": _author("Abstract."), "3": _author("Keywords."),
        "4": _author("Background."), "5": _author("Why radiomics."), "6": _author("Objectives."),
        "7": _author("Name the checklists used (this file is CLEAR's, filled from the run)."),
        "8": _author("Ethics approval, consent and data protection."), "9": _author("Sample size or power."),
        "10": _author("Retrospective or prospective."), "11": _author("Eligibility criteria."),
        "12": _author("A pipeline flowchart: the Snakemake rule graph (`snakemake --rulegraph`) can serve."),
        "13": _sources, "14": _author("Overlap with earlier studies."), "15": _partitions,
        "16": _author("Acquisition protocol (scanner, sequence parameters)."), "17": _clinical_predictors, "18": _outcome,
        "19": _segmentation, "20": _author("Who segmented; number and experience."), "21": _preprocessing_radiomics,
        "22": _resampling, "23": _discretisation, "24": _image_types, "25": _extraction, "26": _classes,
        "27": _n_features, "28": _defaults, "29": _missing, "30": _imbalance_features,
        "31": _author("No segmentation reliability analysis ran in this pipeline."), "32": _scaling,
        "33": _reduction, "34": _algorithm, "35": _tuning,
        "36": _author("Confounders were not modelled by the pipeline."), "37": _selection, "38": _external_or_cv,
        "39": _metrics, "40": _uncertainty_only, "41": _comparison_tests, "42": _versus_clinical,
        "43": _author("No interpretability method ran in this pipeline."), "44": _characteristics, "45": _flow,
        "46": _feature_statistics, "47": _performance, "48": _versus_clinical_results, "49": _author("Main findings."),
        "50": _author("Earlier work."), "51": _author("Practical implications."),
        "52": _author("Strengths and limitations."), "53": _author("Sharing images and masks (not essential)."),
        "54": _features_shared, "55": _sharing("Pre-processing settings: the resolved config in provenance.json; code: the workflow's "
                       "preprocessing rules at its git commit; sharing them is the authors'."),
        "56": _sharing("Modelling code: oncoflow's radiomics and evaluation modules at the git commit in "
                       "provenance.json; sharing it is the authors'."), "57": _model_files,
        "58": _author("Ready-to-use system (not essential)."),
    },
}


def fill_checklist(name: str, facts: RunFacts) -> pd.DataFrame:
    """checklist_<name>.tsv: every item of the checklist, in its order, with status and evidence."""
    checklist, rules = CHECKLISTS[name], RULES[name]
    missing = [n for n, _, _ in checklist.items if n not in rules]
    if missing:
        raise KeyError(f"checklist {name}: no rule for items {missing}")
    rows = []
    for number, section, topic in checklist.items:
        status, text, evidence = rules[number](facts)
        rows.append({"item": number, "section": section, "topic": topic, "status": status, "text": text,
                     "evidence": evidence})
    return pd.DataFrame(rows, columns=CHECKLIST_COLUMNS)


def checklist_markdown(name: str, table: pd.DataFrame) -> str:
    checklist = CHECKLISTS[name]
    counts = table["status"].value_counts()
    lines = [f"# {checklist.title}, version {checklist.version}", "",
             f"DOI {checklist.doi}. Topics are our paraphrases; read the checklist for each item's wording.", "",
             (f"Filled from this run: {counts.get(FILLED, 0)}; left to the authors: {counts.get(AUTHOR, 0)}; "
             f"not applicable: {counts.get(NA, 0)}."), "",
             "| item | topic | status | from the run | evidence |", "|---|---|---|---|---|"]
    for _, r in table.iterrows():
        cells = [r["item"], f"{r['section']}: {r['topic']}", r["status"], r["text"], r["evidence"]]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def checklists_for(config: dict[str, Any]) -> list[str]:
    """Every study: CLAIM and TRIPOD+AI; radiomics studies (radiomics.activate) also CLEAR."""
    radiomics = bool((config.get("radiomics") or {}).get("activate"))
    return ["claim", "tripod_ai", *(["clear"] if radiomics else [])]
