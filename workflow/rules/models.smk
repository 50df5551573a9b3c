# Pretrained weights for offline compute nodes. `snakemake download_models` (target in the
# Snakefile) runs these rules on the machine Snakemake runs on (local rules: a login node under
# --profile slurm), since compute nodes have no internet; every other rule only reads the weights.


rule fetch_pretrained_weights:
    """One ImageNet (torchvision) or MedicalNet weights file into the path models[].weights names."""
    output:
        "{weights}",
    log:
        f"{RESULTS}/logs/fetch_weights/{{weights}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_weights/{{weights}}.tsv"
    wildcard_constraints:
        weights=alternation(PLAN.file_weights),
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        urls=get_weight_urls,
    script:
        "../scripts/fetch_weights.py"
