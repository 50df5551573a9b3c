# Evaluation: tables (tables/), the figures' data and the figures (figures/). Outputs wrapped in
# report() make up `snakemake --report report.html` (captions in workflow/report/).


rule evaluate_models:
    """Metrics per model and cohort (pooled cross-validation test folds, external cohort) and per
    fold, with AUC confidence intervals; thresholds come from each fold's inner-validation
    patients."""
    input:
        predictions=get_all_predictions,
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        metrics=report(
            f"{RESULTS}/tables/metrics.tsv",
            caption="../report/metrics.rst",
            category="Tables",
            labels={"table": "metrics per model and cohort", "file": "metrics.tsv"},
        ),
        metrics_md=f"{RESULTS}/tables/metrics.md",
        metrics_tex=f"{RESULTS}/tables/metrics.tex",
        metrics_per_fold=report(
            f"{RESULTS}/tables/metrics_per_fold.tsv",
            caption="../report/metrics_per_fold.rst",
            category="Tables",
            labels={"table": "metrics per fold", "file": "metrics_per_fold.tsv"},
        ),
        metrics_per_fold_md=f"{RESULTS}/tables/metrics_per_fold.md",
        metrics_per_fold_tex=f"{RESULTS}/tables/metrics_per_fold.tex",
        metrics_per_repeat=f"{RESULTS}/tables/metrics_per_repeat.tsv",
        predictions=f"{RESULTS}/tables/predictions.tsv",
        prediction_sets=report(
            f"{RESULTS}/tables/prediction_sets.tsv",
            caption="../report/prediction_sets.rst",
            category="Tables",
            labels={"table": "prediction sets: coverage", "file": "prediction_sets.tsv"},
        ),
        prediction_sets_md=f"{RESULTS}/tables/prediction_sets.md",
    log:
        f"{RESULTS}/logs/evaluate_models/evaluate_models.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_models/evaluate_models.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        evaluate=PLAN.evaluate_params,
        prediction_sets=config["evaluate"]["prediction_sets"],
        seed=PLAN.seed,
        folds=PLAN.folds_per_repeat,
    script:
        "../scripts/evaluate_models.py"


rule compare_models:
    """Paired DeLong tests on the same patients (cv pooled, external): the pre-specified family
    (evaluate.comparisons and every model against the baseline), corrected within it, and every
    pair as an exploratory table, corrected over all pairs."""
    input:
        predictions=f"{RESULTS}/tables/predictions.tsv",
    output:
        comparisons=report(
            f"{RESULTS}/tables/comparisons.tsv",
            caption="../report/comparisons.rst",
            category="Tables",
            labels={"table": "pairwise DeLong comparisons", "file": "comparisons.tsv"},
        ),
        comparisons_md=f"{RESULTS}/tables/comparisons.md",
        comparisons_tex=f"{RESULTS}/tables/comparisons.tex",
        comparisons_exploratory=f"{RESULTS}/tables/comparisons_exploratory.tsv",
        comparisons_exploratory_md=f"{RESULTS}/tables/comparisons_exploratory.md",
        comparisons_exploratory_tex=f"{RESULTS}/tables/comparisons_exploratory.tex",
    log:
        f"{RESULTS}/logs/compare_models/compare_models.log",
    benchmark:
        f"{RESULTS}/benchmarks/compare_models/compare_models.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        comparisons=config["evaluate"]["comparisons"],
        correction=config["evaluate"]["correction"],
        level=config["evaluate"]["ci_level"],
    script:
        "../scripts/compare_models.py"


rule compute_curves:
    """The figures' data per model and cohort: ROC points and bootstrap band, precision-recall,
    decision curves (net benefit) and binned calibration."""
    input:
        predictions=f"{RESULTS}/tables/predictions.tsv",
    output:
        **{name: f"{RESULTS}/figures/{name}.tsv" for name in PLAN.curve_tables},
    log:
        f"{RESULTS}/logs/compute_curves/compute_curves.log",
    benchmark:
        f"{RESULTS}/benchmarks/compute_curves/compute_curves.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        dca_range=config["evaluate"]["dca_range"],
        dca_step=config["evaluate"]["dca_step"],
        calibration_bins=config["evaluate"]["calibration_bins"],
        calibration_strategy=config["evaluate"]["calibration_strategy"],
        level=config["evaluate"]["ci_level"],
        n_boot=config["evaluate"]["n_boot"],
        seed=PLAN.seed,
    script:
        "../scripts/compute_curves.py"


rule plot_curves:
    """ROC (with a bootstrap band), precision-recall, decision and calibration curves: one figure
    per kind, a panel per cohort, all models; PNG for the report, PDF for the paper."""
    input:
        **{name: f"{RESULTS}/figures/{name}.tsv" for name in PLAN.curve_tables},
        metrics=f"{RESULTS}/tables/metrics.tsv",
    output:
        **{f"{kind}_pdf": f"{RESULTS}/figures/{kind}.pdf" for kind in PLAN.figure_kinds},
        roc_png=report(
            f"{RESULTS}/figures/roc.png",
            caption="../report/roc.rst",
            category="Figures",
            labels={"figure": "ROC curves"},
        ),
        pr_png=report(
            f"{RESULTS}/figures/pr.png",
            caption="../report/pr.rst",
            category="Figures",
            labels={"figure": "precision-recall curves"},
        ),
        dca_png=report(
            f"{RESULTS}/figures/dca.png",
            caption="../report/dca.rst",
            category="Figures",
            labels={"figure": "decision curves"},
        ),
        calibration_png=report(
            f"{RESULTS}/figures/calibration.png",
            caption="../report/calibration.rst",
            category="Figures",
            labels={"figure": "calibration"},
        ),
    log:
        f"{RESULTS}/logs/plot_curves/plot_curves.log",
    benchmark:
        f"{RESULTS}/benchmarks/plot_curves/plot_curves.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/plot_curves.py"


rule write_provenance:
    """The results folder's manifest: resolved config, sample sheet and input checksums (each
    DICOM folder as one digest; pretraining cohorts' subjects too), weights, git commit, package versions, seeds, hardware, and the
    wall time of every rule (from the benchmark files)."""
    input:
        samples=config["cohort"]["samples"],
        metrics=f"{RESULTS}/tables/metrics.tsv",
        predictions=f"{RESULTS}/tables/predictions.tsv",
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        f"{RESULTS}/provenance.json",
    log:
        f"{RESULTS}/logs/write_provenance/write_provenance.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_provenance/write_provenance.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 2
    resources:
        mem_mb=500,
        runtime=5,
    params:
        config=config,
        repo=str(REPO),
        config_files=[str(f) for f in workflow.configfiles],
        subjects=PLAN.provenance_subjects,
        archived=PLAN.archived_outputs,
        weights=get_weight_files(),
        envs=sorted(str(p) for p in (REPO / "envs").glob("*.yaml")),
        benchmarks=f"{RESULTS}/benchmarks",
        cache=f"{RESULTS}/logs/write_provenance/checksum_cache.tsv",
    script:
        "../scripts/write_provenance.py"
