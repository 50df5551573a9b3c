# `snakemake bundle`: the trained study in one portable file for `oncoflow predict` (layout:
# src/oncoflow/predict/bundle.py). Packs what training made; fits and trains nothing new.


rule bundle:
    """The target `snakemake bundle`: the bundle and what it packs. A target without outputs has its
    inputs checked themselves, so a lost fold checkpoint is retrained and the bundle remade,
    although an older bundle still exists (as `snakemake archive`)."""
    input:
        unpack(get_bundle_inputs),
        bundle=PLAN.bundle_path,
        sha256=f"{PLAN.bundle_path}.sha256",


rule write_bundle:
    """Every model's fold checkpoints (stamped with their input preparation, versions and the
    config's checksum), the baseline's coefficients, the fusion stackers, thresholds and
    recalibration maps, the resolved config and the report files in one .tar.gz with checksums."""
    input:
        unpack(get_bundle_inputs),
    output:
        bundle=PLAN.bundle_path,
        # its identity outside it (sha256sum's format): `oncoflow predict --expect-sha256`
        sha256=f"{PLAN.bundle_path}.sha256",
    log:
        f"{RESULTS}/logs/write_bundle/write_bundle.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_bundle/write_bundle.tsv"
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
