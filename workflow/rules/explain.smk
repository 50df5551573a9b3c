# Explanation maps of the CNN fold models and their sanity check (oncoflow.explain).


rule explanation_maps:
    """Grad-CAM and occlusion maps of one CNN fold model for that fold's test patients (NIfTI on
    the crop grid, a PNG overlay per patient; the report embeds some: rule collect_report_overlays), and the same maps from the architecture with
    randomly initialised weights: per patient, the map's mass in the tumor and brain and its rank
    correlation with the random model's map."""
    input:
        checkpoint=f"{RESULTS}/models/{{model}}/fold{{fold}}/checkpoint.pt",
        splits=f"{RESULTS}/folds/splits.tsv",
        crops=get_model_crops,
    output:
        maps=directory(f"{RESULTS}/explain/{{model}}/fold{{fold}}/maps"),
        patients=f"{RESULTS}/explain/{{model}}/fold{{fold}}/patients.tsv",
    log:
        f"{RESULTS}/logs/explanation_maps/{{model}}_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/explanation_maps/{{model}}_fold{{fold}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        explain=config["explain"],
        seed=PLAN.seed,
        crop=PLAN.crop_config,
        subjects=input_subjects,
    script:
        "../scripts/explanation_maps.py"


rule tabulate_explanations:
    """Per CNN model, fold and method: median map mass in the tumor vs the tumor's area share, in
    the brain, and the trained-vs-random rank correlation, flagged at explain.max_random_spearman
    (tables/explanation_sanity.tsv, and its page for the report). In train.yaml: oncoflow.explain.sanity, which also makes the
    maps, imports torch."""
    input:
        patients=get_explanation_tables,
    output:
        tsv=report(
            f"{RESULTS}/tables/explanation_sanity.tsv",
            caption="../report/explanation_sanity.rst",
            category="Explanation maps",
            labels={"table": "sanity check", "file": "explanation_sanity.tsv"},
        ),
        html=report(
            f"{RESULTS}/tables/explanation_sanity.html",
            caption="../report/explanation_sanity.rst",
            category="Explanation maps",
            labels={"table": "sanity check", "file": "explanation_sanity.html"},
        ),
    log:
        f"{RESULTS}/logs/tabulate_explanations/tabulate_explanations.log",
    benchmark:
        f"{RESULTS}/benchmarks/tabulate_explanations/tabulate_explanations.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        explain=config["explain"],
    script:
        "../scripts/tabulate_explanations.py"


rule collect_report_overlays:
    """The overlays the Snakemake report embeds (category "Explanation maps"), as rule
    write_failures chose them (reporting/overlays.tsv): per CNN model, its misclassified
    cross-validation test patients' (explain.report_misclassified) and explain.report_correct
    correctly classified ones' (hard links into report_overlays/); each caption says how many
    were left out (they stay in explain/<model>/fold<k>/maps/)."""
    input:
        overlays=f"{RESULTS}/reporting/overlays.tsv",
        maps=get_explanation_maps,
    output:
        overlays=report(
            directory(f"{RESULTS}/report_overlays"),
            patterns=["{model}/{outcome}/fold{fold}/{subject}.png"],
            caption="../report/explanation_map.rst",
            category="Explanation maps",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "outcome": "{outcome}",
                "fold": "{fold}",
                "subject": "{subject}",
            },
        ),
    log:
        f"{RESULTS}/logs/collect_report_overlays/collect_report_overlays.log",
    benchmark:
        f"{RESULTS}/benchmarks/collect_report_overlays/collect_report_overlays.tsv"
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        explain=config["explain"],
        seed=PLAN.seed,
    script:
        "../scripts/collect_report_overlays.py"
