# Config and sample-sheet validation, the study plan, wildcard constraints and input functions.
# Every derived list and params value lives in PLAN (oncoflow.plan.StudyPlan); rule files only
# read from it, and the input functions below are thin lookups into it.
import sys
from pathlib import Path

from snakemake.utils import validate

REPO = Path(workflow.basedir)
# Scripts import the package from this checkout, also inside per-rule conda envs.
sys.path.insert(0, str(REPO / "src"))

from oncoflow.config import (
    INTERP_METHOD,
    RADIOMICS_STAGE,
    brain_extraction_params,
    check_config_files,
    crop_stages,
    qc_atlas_inputs,
)
from oncoflow.plan import StudyPlan
from oncoflow.sheet import tumor_mask_needed
from oncoflow.runtime import export_pythonpath

# alternation(values): a regex matching exactly these values, as a prefix tree (matching a file
# against it does not grow with the number of subjects); nothing at all for an empty list
from oncoflow.wildcards import exact_alternation as alternation

export_pythonpath(REPO / "src")

check_config_files(workflow.configfiles)
validate(config, REPO / "workflow/schemas/config.schema.yaml", set_default=True)


def validate_sheet(sheet):
    validate(sheet, REPO / "workflow/schemas/samples.schema.yaml")


PLAN = StudyPlan.from_config(config, check_sheet=validate_sheet)
# Radiomics variants read from images (rule extract_radiomics) or from crops through a pretrained
# encoder (rule extract_deep_features).
IMAGE_VARIANTS = [v for v in PLAN.radiomics_variants if v in RADIOMICS_STAGE]
DEEP_FEATURE_VARIANTS = [v for v in PLAN.radiomics_variants if v not in RADIOMICS_STAGE]
RESULTS = PLAN.results
# What methods.md, the checklists and the model card state about the run (their rules' params).
REPORT_FACTS = PLAN.report_facts.params()
MODALITIES = PLAN.modalities
REFERENCE = PLAN.reference
# Subjects of other cohorts that only pretrain (pretrain[].source: cohort) go through the same
# front half, never folds or evaluation: FRONT holds every subject whose images it processes.
FRONT = PLAN.front
# A subject's front half runs as one group job (profiles/slurm); crops and QC montages that read
# cross-fitted predicted masks leave it: those masks come from segmenters trained on other subjects'
# grouped jobs, a dependency a group may not have (Snakemake refuses the DAG).
SEGMENTED_CROP_GROUP = None if PLAN.segment_folds else "subject"


wildcard_constraints:
    subject=alternation(PLAN.front_subjects),
    model=alternation(PLAN.models),
    method=alternation(PLAN.fusion_methods or ["mean"]),
    fold=r"\d+",
    radmodel=alternation(PLAN.radiomics_models),
    variant=alternation(PLAN.radiomics_variants),


def per_modality(stage, subject="{subject}"):
    """Named outputs/inputs, one NIfTI per modality of a stage."""
    return {m: f"{RESULTS}/subjects/{subject}/{stage}/{m}.nii.gz" for m in MODALITIES}


def get_dicom_dir(wildcards):
    return FRONT.loc[wildcards.subject, "dicom"]


def get_nifti_dir(wildcards):
    return FRONT.loc[wildcards.subject, "nifti"]


def get_nifti_files(wildcards):
    """The subject's <modality>.nii(.gz) files that exist (a missing one fails that subject's job,
    naming it, instead of stopping the whole run while the DAG is built)."""
    folder = Path(FRONT.loc[wildcards.subject, "nifti"])
    return [str(p) for m in MODALITIES for p in (folder / f"{m}.nii.gz", folder / f"{m}.nii") if p.is_file()]


def get_tumor_mask(wildcards):
    """The sheet's tumor mask; a subject without one cannot be cropped (error naming it)."""
    return tumor_mask_needed(FRONT, wildcards.subject)


def get_tumor_mask_space(wildcards):
    return FRONT.loc[wildcards.subject, "tumor_mask_space"]


def get_tumor_mask_space_image(wildcards):
    """The raw image of the modality the tumor mask was drawn on (its grid is checked)."""
    return f"{RESULTS}/subjects/{wildcards.subject}/raw/{get_tumor_mask_space(wildcards)}.nii.gz"


def get_tumor_mask_transform(wildcards):
    space = get_tumor_mask_space(wildcards)
    return f"{RESULTS}/subjects/{wildcards.subject}/coreg/{space}_to_reference.mat"


def get_qc_tumor_mask(wildcards):
    """QC draws the tumor when the sheet gives a mask; subjects without one get a QC all the same."""
    if FRONT.loc[wildcards.subject, "tumor_mask"]:
        return f"{RESULTS}/subjects/{wildcards.subject}/coreg/tumor_mask.nii.gz"
    return []


def get_qc_predicted_mask(wildcards):
    """The cross-fitted predicted tumor mask beside the manual one (segment on; in predict, fold 0's
    mask of a subject segmented by the bundle); else none. One path, not a list: the script reads a file."""
    masks = PLAN.qc_predicted_mask(wildcards.subject)
    return masks[0] if masks else []


def get_qc_atlas(wildcards):
    return qc_atlas_inputs(config, RESULTS, wildcards.subject)


def get_qc_rows(wildcards):
    return [f"{RESULTS}/qc/{s}.tsv" for s in PLAN.subjects]


def get_model_crops(wildcards):
    return [f"{RESULTS}/subjects/{s}/crop/crop.npz" for s in PLAN.subjects]


# Params that name what a job's inputs hold (scripts get subjects and modalities typed instead of
# guessing them from paths or keys). They take `input`, so Snakemake counts them as derived from
# the inputs: the input trigger covers them and finished jobs are not rerun for them.
def input_modalities(wildcards, input):
    """The modalities of a per_modality() input, in config order."""
    return MODALITIES


def input_subjects(wildcards, input):
    """The subjects of get_model_crops, in the same order."""
    return PLAN.subjects


def pretrain_input_subjects(wildcards, input):
    """The subjects of get_pretrain_crops, in the same order."""
    return PLAN.fold_pretrain_subjects[int(wildcards.fold)]


def cohort_pretrain_input_subjects(wildcards, input):
    """The subjects of get_cohort_pretrain_crops, in the same order."""
    return PLAN.cohort_pretrain_subjects(wildcards.pretrain)


def get_crop_tumor_mask(wildcards):
    """The manual tumor mask on the crop grid, or the cross-fitted predicted one (segment.crop_mask)."""
    return PLAN.crop_tumor_mask(wildcards.subject)


def get_crop_tumor_mask_source(wildcards):
    """The sheet's mask a manual crop mask was carried from (named in crop errors); none for a
    predicted one (the error names the predicted file itself)."""
    if PLAN.crop_uses_predicted_mask(wildcards.subject):
        return ""
    return get_tumor_mask(wildcards)


def get_crop_predicted_mask_bounds(wildcards):
    """A predicted tumor mask's plausibility bounds (it is not cropped outside them); none for a manual one."""
    return PLAN.segment.plausibility() if PLAN.crop_uses_predicted_mask(wildcards.subject) else {}


def get_segmenter_training_inputs(wildcards):
    """The fold's segmenter's training patients: images (subject-major, modality order of
    segment_input_modalities), brain masks and manual masks on the reference grid."""
    subjects = PLAN.segmenter_subjects(wildcards.fold)
    inputs = PLAN.segment_params(wildcards.fold)["inputs"]
    folder = f"{RESULTS}/subjects/{{}}"
    return {
        "images": [f"{folder.format(s)}/brain/{m}.nii.gz" for s in subjects for m in inputs],
        "brain_masks": [f"{folder.format(s)}/brain/brain_mask.nii.gz" for s in subjects],
        "tumor_masks": [f"{folder.format(s)}/coreg/tumor_mask.nii.gz" for s in subjects],
    }


def segmenter_input_subjects(wildcards, input):
    """The subjects of get_segmenter_training_inputs, in the same order."""
    return PLAN.segmenter_subjects(wildcards.fold)


def get_segmented_subject_inputs(wildcards):
    """A fold's test / external patient's images and brain mask, and its manual mask (for the
    scores) where the sheet gives one. A patient the fold's segmenter trained on stops the run
    while the DAG is built (its mask would not be cross-fitted)."""
    PLAN.check_segmented(wildcards.subject, wildcards.fold)
    folder = f"{RESULTS}/subjects/{wildcards.subject}"
    inputs = PLAN.segment_params(wildcards.fold)["inputs"]
    out = {"images": [f"{folder}/brain/{m}.nii.gz" for m in inputs], "brain_mask": f"{folder}/brain/brain_mask.nii.gz"}
    if wildcards.subject in PLAN.manual_mask_subjects:
        out["manual_mask"] = f"{folder}/coreg/tumor_mask.nii.gz"
    return out


def get_bundle_segmenters(wildcards):
    """predict: every fold's segmenter in the unpacked bundle (segment_new_subject)."""
    return [f"{PLAN.bundle_folder}/segmenters/fold{k}.pt" for k in PLAN.predict_segmenter_folds]


def segment_input_modalities(wildcards, input):
    """The modalities of get_segmented_subject_inputs' images, in the same order."""
    return PLAN.segment_params(wildcards.fold)["inputs"]


def get_segment_params(wildcards):
    return PLAN.segment_params(wildcards.fold)


def get_fold_segmentation_scores(wildcards):
    return [f"{RESULTS}/segment/fold{wildcards.fold}/masks/{s}.tsv" for s in PLAN.segmented_subjects(wildcards.fold)]


def get_segmentation_tables(wildcards):
    return [f"{RESULTS}/segment/fold{k}/segmentation.tsv" for k in PLAN.segment_folds]


def get_model_params(wildcards):
    return PLAN.model_params(wildcards.model)


def get_histories(wildcards):
    return PLAN.histories()


def get_selection_table(wildcards):
    """tables/selection.tsv for reports of a run with CNNs; none otherwise."""
    return PLAN.selection_table()


def get_pretrained_checkpoint(wildcards):
    """init: pretrained: the fold's own pretrain_model checkpoint, or the one made on another
    cohort (pretrain_model_on_cohort); else nothing."""
    return PLAN.pretrained_checkpoint(wildcards.model, wildcards.fold)


def get_pretrain_crops(wildcards):
    PLAN.pretrain_job(wildcards.pretrain, wildcards.model)
    subjects = PLAN.fold_pretrain_subjects[int(wildcards.fold)]
    return [f"{RESULTS}/subjects/{s}/crop/crop.npz" for s in subjects]


def get_cohort_pretrain_crops(wildcards):
    PLAN.pretrain_job(wildcards.pretrain, wildcards.model)
    return [f"{RESULTS}/subjects/{s}/crop/crop.npz" for s in PLAN.cohort_pretrain_subjects(wildcards.pretrain)]


def get_pretrain_params(wildcards):
    return PLAN.pretrain_params(wildcards.pretrain, wildcards.model)


def get_fusion_inputs(wildcards):
    return [f"{RESULTS}/models/{m}/fold{wildcards.fold}/predictions.tsv" for m in PLAN.fused]


def get_superres_training_images(wildcards):
    """The training subjects' images; none when a local checkpoint is loaded instead."""
    if config["superres"]["checkpoint"]:
        return []
    return [f"{RESULTS}/subjects/{s}/coreg/{PLAN.radiomics_modality}.nii.gz" for s in PLAN.sr_train]


def get_feature_tumor_mask(wildcards):
    """The subject's tumor mask (reference grid) its baseline / IBSI radiomics features read: the
    manual one, or the cross-fitted predicted one (segment.feature_mask)."""
    return PLAN.feature_tumor_mask(wildcards.subject)


def get_feature_tumor_masks(wildcards):
    """get_feature_tumor_mask of every study subject, in PLAN.subjects order (extract_baseline_features)."""
    return [PLAN.feature_tumor_mask(s) for s in PLAN.subjects]


def get_radiomics_images(wildcards):
    """Every subject's image and tumor mask of the variant (co-registered, or at x2; the x2 masks
    are carried from get_feature_tumor_mask)."""
    stage = f"{RESULTS}/subjects/{{}}/{RADIOMICS_STAGE[wildcards.variant]}"
    return {
        "images": [f"{stage.format(s)}/{PLAN.radiomics_modality}.nii.gz" for s in PLAN.radiomics_subjects],
        "tumor_masks": [PLAN.radiomics_tumor_mask(s, wildcards.variant) for s in PLAN.radiomics_subjects],
    }


def get_deep_feature_crops(wildcards):
    """Every radiomics subject's crop (radiomics.variants hdbet / deepbet read the crops)."""
    return [f"{RESULTS}/subjects/{s}/crop/crop.npz" for s in PLAN.radiomics_subjects]


def get_radiomics_features(wildcards):
    """The variant's features table (radiomics_* and combined_*); none for the clinical model."""
    if wildcards.radmodel == "clinical":
        return []
    return f"{RESULTS}/radiomics/{wildcards.radmodel.split('_', 1)[1]}/features.tsv"


def get_radiomics_superres(wildcards):
    return PLAN.radiomics_superres(wildcards.variant)


def get_study_page(wildcards):
    """The study's page in docs/studies/ (its differences from the paper), when there is one."""
    page = REPO / "docs" / "studies" / f"{PLAN.study}.md"
    return str(page) if page.is_file() else []


def get_all_predictions(wildcards):
    return PLAN.all_predictions()


def get_final_output():
    return PLAN.final_targets()


# Input functions that add no file (a compute job never waits on a download) but stop the run
# while the DAG is built, before any job, when weights the job reads are missing.
def check_cv_folds(wildcards):
    return PLAN.check_folds()


def check_model_weights(wildcards):
    return PLAN.check_weights("file", PLAN.models[wildcards.model].params.get("weights"))


def check_pretrain_weights(wildcards):
    return PLAN.check_weights("file", PLAN.pretrain_job(wildcards.pretrain, wildcards.model).params.get("weights"))


def get_weight_urls(wildcards):
    return [PLAN.file_weights[wildcards.weights].url]


def get_weight_files():
    """Targets of download_models: every weights file this config reads."""
    return PLAN.weight_files()


def get_bundle_inputs(wildcards):
    return PLAN.bundle_inputs()


def get_predict_inputs(wildcards):
    """The new subjects' crops, QC table, baseline features and the unpacked bundle; stops while
    the DAG is built when this run's preparation differs from the bundle's."""
    return PLAN.predict_inputs()


def get_predict_params(wildcards):
    return PLAN.predict_params


def get_new_subject_map_inputs(wildcards):
    return PLAN.new_subject_map_inputs()


def get_new_subject_map_params(wildcards):
    return PLAN.new_subject_map_params


def get_new_subject_mask_params(wildcards):
    return PLAN.new_subject_mask_params


def get_bundle_metrics(wildcards):
    return PLAN.bundle_metrics()


def get_explanation_tables(wildcards):
    return PLAN.explanation_tables()


def get_explanation_maps(wildcards):
    """The CNN fold models' map folders (explain.activate), for the failure analysis and the archive."""
    return PLAN.explanation_maps()


def get_explanation_table(wildcards):
    """tables/explanation_sanity.tsv for reports of a run with CNNs and explain.activate; none otherwise."""
    return PLAN.explanation_table()
