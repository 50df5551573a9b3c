# Config and sample-sheet validation, wildcard constraints and input functions.
import os
import re
import sys
from pathlib import Path

import pandas as pd
from snakemake.utils import validate

REPO = Path(workflow.basedir)
# Scripts import the package from this checkout, also inside per-rule conda envs.
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))

from oncoflow.config import (
    brain_extraction_params,
    check_config,
    check_radiomics_samples,
    crop_stages,
    expand_models,
    fusion_inputs,
    load_pretrain_samples,
    load_samples,
    radiomics_models,
    tumor_mask_needed,
)
from oncoflow.models.weights import required_weights

validate(config, REPO / "workflow/schemas/config.schema.yaml", set_default=True)
check_config(config)
SAMPLES = load_samples(config)
validate(SAMPLES, REPO / "workflow/schemas/samples.schema.yaml")
check_radiomics_samples(config, SAMPLES)

STUDY = config["study"]["name"]
RESULTS = f"results/{STUDY}"
MODALITIES = list(config["ingest"]["modalities"])
REFERENCE = config["preprocess"]["reference"]
SUBJECTS = SAMPLES["subject"].tolist()
# Subjects of other cohorts that only pretrain (pretrain[].source: cohort): the same front half,
# never folds or evaluation. FRONT holds every subject whose images the front half processes.
PRETRAIN_SAMPLES = load_pretrain_samples(config, SAMPLES)
validate(PRETRAIN_SAMPLES, REPO / "workflow/schemas/samples.schema.yaml")
FRONT = pd.concat([SAMPLES, PRETRAIN_SAMPLES]) if len(PRETRAIN_SAMPLES) else SAMPLES
# Each subject's images come from exactly one of a DICOM folder (convert_dicom) or a NIfTI folder
# (import_nifti); the two rules' wildcard constraints use these lists.
DICOM_SUBJECTS = FRONT.loc[FRONT["source"] == "dicom", "subject"].tolist()
NIFTI_SUBJECTS = FRONT.loc[FRONT["source"] == "nifti", "subject"].tolist()
# Pretraining-cohort subjects without a tumor mask get a whole-brain crop (crop_brain).
MASKLESS_SUBJECTS = PRETRAIN_SAMPLES.loc[PRETRAIN_SAMPLES["tumor_mask"] == "", "subject"].tolist()
MODELS = expand_models(config)
FUSED = fusion_inputs(config, MODELS) if config["fusion"]["methods"] else []
FUSION_METHODS = config["fusion"]["methods"]
FOLDS = list(range(config["cv"]["folds"]))
# Radiomics branch (radiomics.smk, superres.smk): model names such as radiomics_original, clinical,
# combined_sr; empty when radiomics.activate is false.
RADIOMICS_MODELS = radiomics_models(config)
RADIOMICS_VARIANTS = list(config["radiomics"]["variants"]) if RADIOMICS_MODELS else []
# Pretrained weights this config reads (ImageNet/MedicalNet files): compute rules
# only read them; `snakemake download_models` fetches missing ones on a login node (models.smk).
WEIGHTS = required_weights(config)


def alternation(values):
    """A regex matching exactly these values (nothing at all for an empty list)."""
    return "|".join(re.escape(v) for v in values) or "(?!)"


wildcard_constraints:
    subject=alternation(FRONT["subject"].tolist()),
    model=alternation(MODELS),
    method=alternation(FUSION_METHODS or ["mean"]),
    fold=r"\d+",
    radmodel=alternation(RADIOMICS_MODELS),
    variant=alternation(RADIOMICS_VARIANTS),


def subject_dir(stage):
    return f"{RESULTS}/subjects/{{subject}}/{stage}"


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


def get_qc_rows(wildcards):
    return expand(f"{RESULTS}/qc/{{subject}}.tsv", subject=SUBJECTS)


def get_model_crops(wildcards):
    return expand(f"{RESULTS}/subjects/{{subject}}/crop/crop.npz", subject=SUBJECTS)


def crop_config():
    """config["crop"] without the default region, so tumor-crop runs keep the params they had
    before whole-brain crops existed (a params change reruns a job)."""
    return {k: v for k, v in config["crop"].items() if not (k == "region" and v == "tumor")}


def get_crop_params():
    """Only what shapes the cached crops (slices/depth are chosen at training time)."""
    return {k: v for k, v in crop_config().items() if k in ("size", "margin_mm", "region")}


def get_model_params(wildcards):
    spec = MODELS[wildcards.model]
    return {"modalities": list(spec.modalities), **spec.params, "crop": crop_config(), "seed": config["cv"]["seed"]}


def get_fusion_inputs(wildcards):
    return [f"{RESULTS}/models/{m}/fold{wildcards.fold}/predictions.tsv" for m in FUSED]


def get_all_predictions(wildcards):
    single = expand(f"{RESULTS}/models/{{model}}/fold{{fold}}/predictions.tsv", model=MODELS, fold=FOLDS)
    fused = expand(f"{RESULTS}/models/fusion_{{method}}/fold{{fold}}/predictions.tsv", method=FUSION_METHODS, fold=FOLDS)
    radiomics = expand(f"{RESULTS}/models/{{radmodel}}/fold{{fold}}/predictions.tsv", radmodel=RADIOMICS_MODELS,
                       fold=FOLDS)
    return single + fused + radiomics


def get_final_output():
    qc = [f"{RESULTS}/qc/qc.tsv", *expand(f"{RESULTS}/qc/{{subject}}.png", subject=SUBJECTS)]
    # tables, figures (evaluate.smk): everything `snakemake --report` shows
    evaluation = [f"{RESULTS}/tables/{t}.tsv" for t in ("metrics", "metrics_per_fold", "comparisons")]
    figures = expand(f"{RESULTS}/figures/{{kind}}.{{ext}}", kind=["roc", "pr", "dca", "calibration"],
                     ext=["png", "pdf"])
    superres = [f"{RESULTS}/superres/quality.tsv"] if "sr" in RADIOMICS_VARIANTS else []
    return [*evaluation, *figures, f"{RESULTS}/provenance.json", f"{RESULTS}/methods.md", *qc, *superres]


# Input functions that add no file (a compute job never waits on a download) but stop the run
# while the DAG is built, before any job, when weights the job reads are missing.
def check_model_weights(wildcards):
    path = MODELS[wildcards.model].params.get("weights")
    for weights in WEIGHTS:
        if path and weights.path == Path(path):
            weights.check()
    return []


def get_weight_files():
    """Targets of download_models: every weights file this config reads."""
    return [str(f) for weights in WEIGHTS for f in weights.files]
