# Pretrained weights for offline compute nodes. `snakemake download_models` (target in the
# Snakefile) runs these rules on the machine Snakemake runs on (local rules: a login node under
# --profile slurm), since compute nodes have no internet; every other rule only reads the weights.
HDBET_WEIGHTS = [w for w in WEIGHTS if w.kind == "hdbet"]
FILE_WEIGHTS = {str(w.path): w for w in WEIGHTS if w.kind != "hdbet"}


rule fetch_hdbet_weights:
    """HD-BET 2.0 weights (nnU-Net model folder) from HD-BET's release zip into
    preprocess.brain_extraction.hdbet_weights."""
    output:
        [str(f) for w in HDBET_WEIGHTS for f in w.files],
    params:
        urls=[w.url for w in HDBET_WEIGHTS],
    log:
        f"{RESULTS}/logs/fetch_weights/hdbet.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_weights/hdbet.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/fetch_weights.py"


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
