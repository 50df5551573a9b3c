# `snakemake bundle`: the trained study in one portable file for `oncoflow predict` (layout:
# src/oncoflow/predict/bundle.py). Packs what training made; fits and trains nothing new.


rule bundle:
    """Every model's fold checkpoints (stamped with their input preparation, versions and the
    config's checksum), the baseline's coefficients, the fusion stackers, thresholds and
    recalibration maps, the resolved config and the report files in one .tar.gz with checksums."""
    input:
        unpack(get_bundle_inputs),
    output:
        PLAN.bundle_path,
    log:
        f"{RESULTS}/logs/bundle/bundle.log",
    benchmark:
        f"{RESULTS}/benchmarks/bundle/bundle.tsv"
    localrule: True
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        config=config,
        bundle=PLAN.bundle_params,
    script:
        "../scripts/bundle_study.py"
