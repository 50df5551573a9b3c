# Radiomics branch (config `radiomics`): IBSI features (MIRP) of one co-registered modality inside
# the tumor mask, per image variant (original, interp, sr), or frozen deep features of the crops
# (hdbet, deepbet: rule extract_deep_features); then per fold the LASSO rad-score,
# clinical and combined models, written as models/<name>/fold<k>/predictions.tsv for evaluation.


rule extract_radiomics:
    """IBSI features (MIRP) of every subject's image inside its tumor mask, one table per variant,
    with the extraction settings and MIRP version beside it. Each subject's inputs are checked
    first (empty, tiny or off-grid mask, constant image); the job fails naming every such subject.
    One job per variant, not per subject: loading MIRP (ITK) costs more than one tumor's features."""
    input:
        unpack(get_radiomics_images),
    output:
        features=f"{RESULTS}/radiomics/{{variant}}/features.tsv",
        settings=f"{RESULTS}/radiomics/{{variant}}/settings.json",
    log:
        f"{RESULTS}/logs/extract_radiomics/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract_radiomics/{{variant}}.tsv"
    wildcard_constraints:
        variant=alternation(IMAGE_VARIANTS),
    conda:
        "../../envs/radiomics.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        subjects=PLAN.radiomics_subjects,
        settings=config["radiomics"]["settings"],
        modality=PLAN.radiomics_modality,
        superres=get_radiomics_superres,
    script:
        "../scripts/extract_radiomics.py"


rule extract_deep_features:
    """Frozen deep features (radiomics.variants hdbet / deepbet): each modality of every subject's
    crop, prepared as the pretrained brain-extraction network expects, through its encoder once,
    the deepest feature map averaged inside the tumor; with the settings beside it. Nothing is
    fitted: the radiomics models fit on these features per fold like on any variant's."""
    input:
        crops=get_deep_feature_crops,
    output:
        features=f"{RESULTS}/radiomics/{{variant}}/features.tsv",
        settings=f"{RESULTS}/radiomics/{{variant}}/settings.json",
    log:
        f"{RESULTS}/logs/extract_deep_features/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract_deep_features/{{variant}}.tsv"
    wildcard_constraints:
        variant=alternation(DEEP_FEATURE_VARIANTS),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        subjects=PLAN.radiomics_subjects,
        modalities=MODALITIES,
        crop=PLAN.crop_config,
    script:
        "../scripts/extract_deep_features.py"


rule fit_radiomics_model:
    """One radiomics, clinical or combined model on one fold: variance and correlation filters,
    standardisation, LASSO-logistic (C by inner CV), clinical imputation and regressions, all
    fitted on the fold's training patients only; predictions for every role, the coefficients and
    the fitted model as numbers (model.json, what `snakemake bundle` packs)."""
    input:
        features=get_radiomics_features,
        samples=config["cohort"]["samples"],
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        predictions=f"{RESULTS}/models/{{radmodel}}/fold{{fold}}/predictions.tsv",
        coefficients=f"{RESULTS}/models/{{radmodel}}/fold{{fold}}/coefficients.tsv",
        model=f"{RESULTS}/models/{{radmodel}}/fold{{fold}}/model.json",
    log:
        f"{RESULTS}/logs/fit_radiomics_model/{{radmodel}}_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_radiomics_model/{{radmodel}}_fold{{fold}}.tsv"
    conda:
        "../../envs/radiomics.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        clinical=config["radiomics"]["clinical"],
        selection=config["radiomics"]["selection"],
        seed=config["cv"]["seed"],
        fit_validation=config["radiomics"]["fit_validation"],
        harmonisation=PLAN.harmonisation,
    script:
        "../scripts/fit_radiomics_model.py"
