# Config and sample-sheet validation, wildcard constraints and input functions.
import os
import re
import sys
from pathlib import Path

from snakemake.utils import validate

REPO = Path(workflow.basedir)
# Scripts import the package from this checkout, also inside per-rule conda envs.
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))

from oncoflow.config import check_config, expand_models, fusion_inputs, load_samples

validate(config, REPO / "workflow/schemas/config.schema.yaml", set_default=True)
check_config(config)
SAMPLES = load_samples(config)
validate(SAMPLES, REPO / "workflow/schemas/samples.schema.yaml")

STUDY = config["study"]["name"]
RESULTS = f"results/{STUDY}"
MODALITIES = list(config["ingest"]["modalities"])
REFERENCE = config["preprocess"]["reference"]
SUBJECTS = SAMPLES["subject"].tolist()
MODELS = expand_models(config)
FUSED = fusion_inputs(config, MODELS) if config["fusion"]["methods"] else []
FUSION_METHODS = config["fusion"]["methods"]
FOLDS = list(range(config["cv"]["folds"]))


def alternation(values):
    return "|".join(re.escape(v) for v in values)


wildcard_constraints:
    subject=alternation(SUBJECTS),
    model=alternation(MODELS),
    method=alternation(FUSION_METHODS or ["mean"]),
    fold=r"\d+",


def subject_dir(stage):
    return f"{RESULTS}/subjects/{{subject}}/{stage}"


def per_modality(stage, subject="{subject}"):
    """Named outputs/inputs, one NIfTI per modality of a stage."""
    return {m: f"{RESULTS}/subjects/{subject}/{stage}/{m}.nii.gz" for m in MODALITIES}


def get_dicom_dir(wildcards):
    return SAMPLES.loc[wildcards.subject, "dicom"]


def get_tumor_mask(wildcards):
    return SAMPLES.loc[wildcards.subject, "tumor_mask"]


def get_tumor_mask_space(wildcards):
    return SAMPLES.loc[wildcards.subject, "tumor_mask_space"]


def get_model_crops(wildcards):
    return expand(f"{RESULTS}/subjects/{{subject}}/crop/crop.npz", subject=SUBJECTS)


def get_crop_params():
    """Only what shapes the cached crops (slices/depth are chosen at training time)."""
    return {k: config["crop"][k] for k in ("size", "margin_mm")}


def get_model_params(wildcards):
    spec = MODELS[wildcards.model]
    return {"modalities": list(spec.modalities), **spec.params, "crop": config["crop"], "seed": config["cv"]["seed"]}


def get_fusion_inputs(wildcards):
    return [f"{RESULTS}/models/{m}/fold{wildcards.fold}/predictions.tsv" for m in FUSED]


def get_all_predictions(wildcards):
    single = expand(f"{RESULTS}/models/{{model}}/fold{{fold}}/predictions.tsv", model=MODELS, fold=FOLDS)
    fused = expand(f"{RESULTS}/models/fusion_{{method}}/fold{{fold}}/predictions.tsv", method=FUSION_METHODS, fold=FOLDS)
    return single + fused


def get_final_output():
    return [f"{RESULTS}/tables/metrics.tsv", f"{RESULTS}/provenance.json"]
