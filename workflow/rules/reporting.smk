# The reporting folder (results/<study>/reporting/): participant flow, characteristics by
# partition (Table 1), failure analysis and filled reporting checklists (oncoflow.report.reporting).
REPORTING = f"{RESULTS}/reporting"


rule write_participant_flow:
    """Sample sheet -> ingested -> QC (flagged subjects kept and listed) -> folds and roles ->
    evaluated, with the reason for every subject lost, from the run's own records."""
    input:
        samples=config["cohort"]["samples"],
        qc=f"{RESULTS}/qc/qc.tsv",
        splits=f"{RESULTS}/folds/splits.tsv",
        predictions=f"{RESULTS}/tables/predictions.tsv",
        raw=expand(f"{RESULTS}/subjects/{{subject}}/raw/{REFERENCE}.nii.gz", subject=PLAN.subjects),
        crop_reports=expand(
            f"{RESULTS}/subjects/{{subject}}/crop/crop.tsv",
            subject=PLAN.predicted_crop_subjects,
        ),
    output:
        tsv=report(
            f"{REPORTING}/flow.tsv",
            caption="../report/flow.rst",
            category="Reporting",
            labels={"table": "participant flow", "file": "flow.tsv"},
        ),
        png=report(
            f"{REPORTING}/flow.png",
            caption="../report/flow.rst",
            category="Reporting",
            labels={"figure": "participant flow", "file": "flow.png"},
        ),
    log:
        f"{RESULTS}/logs/write_participant_flow/write_participant_flow.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_participant_flow/write_participant_flow.tsv"
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        settings=PLAN.sheet_settings,
        subjects=PLAN.subjects,  # in the order of input.raw
    script:
        "../scripts/write_participant_flow.py"


rule write_characteristics:
    """Table 1: label, age, sex and clinical columns per cohort and per test fold; tests where the
    groups are not random (cohorts, folds grouped by site), none across random folds."""
    input:
        samples=config["cohort"]["samples"],
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        tsv=report(
            f"{REPORTING}/characteristics.tsv",
            caption="../report/characteristics.rst",
            category="Reporting",
            labels={"table": "characteristics by partition", "file": "characteristics.tsv"},
        ),
        md=f"{REPORTING}/characteristics.md",
    log:
        f"{RESULTS}/logs/write_characteristics/write_characteristics.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_characteristics/write_characteristics.tsv"
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        settings=PLAN.sheet_settings,
    script:
        "../scripts/write_characteristics.py"


rule write_failures:
    """The misclassified patients of each model at its threshold, with QC flags and montages, and
    a CNN's test patients with the map of the fold model that predicted them and its check;
    overlays.tsv: which of the maps the report embeds (explain.report_misclassified, report_correct)."""
    input:
        predictions=f"{RESULTS}/tables/predictions.tsv",
        metrics=f"{RESULTS}/tables/metrics.tsv",
        qc=f"{RESULTS}/qc/qc.tsv",
        explanations=get_explanation_table,
        maps=get_explanation_maps,
    output:
        tsv=report(
            f"{REPORTING}/failures.tsv",
            caption="../report/failures.rst",
            category="Reporting",
            labels={"table": "failure analysis", "file": "failures.tsv"},
        ),
        md=f"{REPORTING}/failures.md",
        overlays=f"{REPORTING}/overlays.tsv",
    log:
        f"{RESULTS}/logs/write_failures/write_failures.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_failures/write_failures.tsv"
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        cnn=list(PLAN.models),
        explain=config["explain"],
        seed=PLAN.seed,
    script:
        "../scripts/write_failures.py"


rule write_checklist:
    """A reporting checklist filled from this run: each item filled (with its evidence file),
    left to the authors, or not applicable (with the reason)."""
    input:
        splits=f"{RESULTS}/folds/splits.tsv",
        qc=f"{RESULTS}/qc/qc.tsv",
        metrics=f"{RESULTS}/tables/metrics.tsv",
        failures=f"{REPORTING}/failures.tsv",
        flow=f"{REPORTING}/flow.tsv",
        characteristics=f"{REPORTING}/characteristics.tsv",
        methods=f"{RESULTS}/methods.md",
        selection=get_selection_table,
        explanations=get_explanation_table,
    output:
        tsv=report(
            f"{REPORTING}/checklist_{{checklist}}.tsv",
            caption="../report/checklist.rst",
            category="Reporting",
            subcategory="Checklists",
            labels={"checklist": "{checklist}", "file": "checklist_{checklist}.tsv"},
        ),
        md=f"{REPORTING}/checklist_{{checklist}}.md",
    log:
        f"{RESULTS}/logs/write_checklist/{{checklist}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_checklist/{{checklist}}.tsv"
    wildcard_constraints:
        checklist=alternation(PLAN.checklists),
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        facts=REPORT_FACTS,
    script:
        "../scripts/write_checklist.py"


rule render_report_pages:
    """The results as pages the Snakemake report shows inline (each table's readable view; the TSV
    stays in the report for download) and reporting/summary.html: the headline table beside the
    figures, which the report's landing page opens with."""
    input:
        metrics=f"{RESULTS}/tables/metrics.tsv",
        metrics_md=f"{RESULTS}/tables/metrics.md",
        metrics_per_fold_md=f"{RESULTS}/tables/metrics_per_fold.md",
        comparisons_md=f"{RESULTS}/tables/comparisons.md",
        characteristics_md=f"{REPORTING}/characteristics.md",
        failures_md=f"{REPORTING}/failures.md",
        qc=f"{RESULTS}/qc/qc.tsv",
        flow=f"{REPORTING}/flow.tsv",
        checklists=expand(f"{REPORTING}/checklist_{{checklist}}.md", checklist=PLAN.checklists),
        figures=expand(f"{RESULTS}/figures/{{kind}}.png", kind=PLAN.figure_kinds),
    output:
        summary=report(
            f"{REPORTING}/summary.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"page": "headline table and figures"},
        ),
        metrics=report(
            f"{RESULTS}/tables/metrics.html",
            caption="../report/metrics.rst",
            category="Tables",
            labels={"table": "metrics per model and cohort", "file": "metrics.html"},
        ),
        metrics_per_fold=report(
            f"{RESULTS}/tables/metrics_per_fold.html",
            caption="../report/metrics_per_fold.rst",
            category="Tables",
            labels={"table": "metrics per fold", "file": "metrics_per_fold.html"},
        ),
        comparisons=report(
            f"{RESULTS}/tables/comparisons.html",
            caption="../report/comparisons.rst",
            category="Tables",
            labels={"table": "pairwise DeLong comparisons", "file": "comparisons.html"},
        ),
        characteristics=report(
            f"{REPORTING}/characteristics.html",
            caption="../report/characteristics.rst",
            category="Reporting",
            labels={"table": "characteristics by partition", "file": "characteristics.html"},
        ),
        flow=report(
            f"{REPORTING}/flow.html",
            caption="../report/flow.rst",
            category="Reporting",
            labels={"table": "participant flow", "file": "flow.html"},
        ),
        failures=report(
            f"{REPORTING}/failures.html",
            caption="../report/failures.rst",
            category="Reporting",
            labels={"table": "failure analysis", "file": "failures.html"},
        ),
        checklists=report(
            f"{REPORTING}/checklists.html",
            caption="../report/checklists.rst",
            category="Reporting",
            subcategory="Checklists",
            labels={"checklist": "all, as one page", "file": "checklists.html"},
        ),
        qc=report(
            f"{RESULTS}/qc/qc.html",
            caption="../report/qc_table.rst",
            category="Quality control",
            subcategory="Table",
            labels={"table": "QC per subject", "file": "qc.html"},
        ),
    log:
        f"{RESULTS}/logs/render_report_pages/render_report_pages.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_report_pages/render_report_pages.tsv"
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        evaluate=PLAN.evaluate_params,
        level=config["evaluate"]["ci_level"],
        correction=config["evaluate"]["correction"],
        study=config["study"],
    script:
        "../scripts/render_report_pages.py"
