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
    output:
        tsv=report(
            f"{REPORTING}/flow.tsv",
            caption="../report/flow.rst",
            category="Reporting",
            labels={"table": "participant flow"},
        ),
        png=report(
            f"{REPORTING}/flow.png",
            caption="../report/flow.rst",
            category="Reporting",
            labels={"figure": "participant flow"},
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
    """Table 1: label, age, sex and clinical columns per cohort and per test fold, with tests."""
    input:
        samples=config["cohort"]["samples"],
        splits=f"{RESULTS}/folds/splits.tsv",
    output:
        tsv=report(
            f"{REPORTING}/characteristics.tsv",
            caption="../report/characteristics.rst",
            category="Reporting",
            labels={"table": "characteristics by partition"},
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
    """The misclassified patients of each model at its threshold, with QC flags and montages."""
    input:
        predictions=f"{RESULTS}/tables/predictions.tsv",
        metrics=f"{RESULTS}/tables/metrics.tsv",
        qc=f"{RESULTS}/qc/qc.tsv",
    output:
        tsv=report(
            f"{REPORTING}/failures.tsv",
            caption="../report/failures.rst",
            category="Reporting",
            labels={"table": "failure analysis"},
        ),
        md=f"{REPORTING}/failures.md",
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
    output:
        tsv=report(
            f"{REPORTING}/checklist_{{checklist}}.tsv",
            caption="../report/checklist.rst",
            category="Reporting",
            subcategory="Checklists",
            labels={"checklist": "{checklist}"},
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
        config=config,
    script:
        "../scripts/write_checklist.py"
