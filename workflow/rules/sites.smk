# Multi-centre studies (cohort.site): per-site metrics and the per-site figure.


rule evaluate_sites:
    """AUC with its CI, n and positives per model, cohort and site (the site of each patient from
    folds/splits.tsv, carried in predictions.tsv), and a forest plot of them."""
    input:
        predictions=f"{RESULTS}/tables/predictions.tsv",
    output:
        metrics=report(
            f"{RESULTS}/tables/metrics_by_site.tsv",
            caption="../report/metrics_by_site.rst",
            category="Tables",
            labels={"table": "metrics per site"},
        ),
        metrics_md=f"{RESULTS}/tables/metrics_by_site.md",
        png=report(
            f"{RESULTS}/figures/sites.png",
            caption="../report/sites.rst",
            category="Figures",
            labels={"figure": "AUC per site"},
        ),
        pdf=f"{RESULTS}/figures/sites.pdf",
    log:
        f"{RESULTS}/logs/evaluate_sites/evaluate_sites.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_sites/evaluate_sites.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        evaluate=PLAN.evaluate_params,
        seed=PLAN.seed,
    script:
        "../scripts/evaluate_sites.py"
