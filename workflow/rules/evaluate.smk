rule evaluate_models:
    """Metrics per model and cohort (pooled cross-validation test folds, external cohort) with AUC
    confidence intervals; thresholds come from each fold's inner-validation patients."""
    input:
        predictions=get_all_predictions,
    output:
        metrics=f"{RESULTS}/tables/metrics.tsv",
        metrics_md=f"{RESULTS}/tables/metrics.md",
        metrics_tex=f"{RESULTS}/tables/metrics.tex",
        predictions=f"{RESULTS}/tables/predictions.tsv",
    params:
        evaluate=config["evaluate"],
    log:
        f"{RESULTS}/logs/evaluate_models/evaluate_models.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_models/evaluate_models.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/evaluate_models.py"


rule write_provenance:
    """What made the tables: resolved config, code version, package versions, input checksums."""
    input:
        samples=config["cohort"]["samples"],
        metrics=f"{RESULTS}/tables/metrics.tsv",
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        f"{RESULTS}/provenance.json",
    params:
        config=config,
        repo=str(REPO),
    log:
        f"{RESULTS}/logs/write_provenance/write_provenance.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_provenance/write_provenance.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/write_provenance.py"
