# Pretrained weights for offline compute nodes. `snakemake download_models` (target in the
# Snakefile) runs these rules on the machine Snakemake runs on (local rules: a login node under
# --profile slurm), since compute nodes have no internet; every other rule only reads the weights.
FILE_WEIGHTS = {str(w.path): w for w in WEIGHTS}


rule fetch_pretrained_weights:
    """One ImageNet (torchvision) or MedicalNet weights file into the path models[].weights names."""
    output:
        "{weights}",
    wildcard_constraints:
        weights=alternation(FILE_WEIGHTS) if FILE_WEIGHTS else "(?!)",
    params:
        urls=lambda wildcards: [FILE_WEIGHTS[wildcards.weights].url],
    log:
        f"{RESULTS}/logs/fetch_weights/{{weights}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_weights/{{weights}}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/fetch_weights.py"
