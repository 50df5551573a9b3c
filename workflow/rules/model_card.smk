# The model card (results/<study>/reporting/model_card.{md,json,html}; oncoflow.report.model_card).


rule write_model_card:
    """The study's model card (sections of Mitchell et al. 2019): intended use, training data with
    class balance, cohorts and sites, performance with CIs and calibration per model and cohort
    (copied from tables/metrics.tsv), limitations from this run's numbers, the differences from the
    paper (the study page in docs/studies/), and the checksums of code, config and inputs."""
    input:
        metrics=f"{RESULTS}/tables/metrics.tsv",
        prediction_sets=f"{RESULTS}/tables/prediction_sets.tsv",
        samples=config["cohort"]["samples"],
        splits=f"{RESULTS}/folds/splits.tsv",
        qc=f"{RESULTS}/qc/qc.tsv",
        provenance=f"{RESULTS}/provenance.json",
        study_page=get_study_page,
        selection=get_selection_table,
        explanations=get_explanation_table,
    output:
        md=f"{REPORTING}/model_card.md",
        json=f"{REPORTING}/model_card.json",
        html=report(
            f"{REPORTING}/model_card.html",
            caption="../report/model_card.rst",
            category="Reporting",
            labels={"document": "model card"},
        ),
    log:
        f"{RESULTS}/logs/write_model_card/write_model_card.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_model_card/write_model_card.tsv"
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
        "../scripts/write_model_card.py"
