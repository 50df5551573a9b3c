# methods.md: a methods section for the paper, written from the resolved config of this run
# (oncoflow.report.methods), with the software versions recorded in provenance.json.


rule write_methods:
    """Every step that ran with its parameters (folds, seeds, statistics), software versions and the
    references to cite; a step switched off in the config is not described as done."""
    input:
        provenance=f"{RESULTS}/provenance.json",
        splits=f"{RESULTS}/folds/splits.tsv",
        comparisons=f"{RESULTS}/tables/comparisons.tsv",
        selection=get_selection_table,
        explanations=get_explanation_table,
    output:
        md=f"{RESULTS}/methods.md",
        html=report(
            f"{RESULTS}/methods.html",
            caption="../report/methods.rst",
            category="Methods",
            labels={"document": "methods.md of this run"},
        ),
    log:
        f"{RESULTS}/logs/write_methods/write_methods.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_methods/write_methods.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        facts=REPORT_FACTS,
        dicom=PLAN.dicom_count,
        predicted_masks=PLAN.predicted_crop_subjects,
    script:
        "../scripts/write_methods.py"
