# `snakemake archive`: one .tar.gz for a paper (layout: src/oncoflow/report/archive.py).


rule archive:
    """The target `snakemake archive`: the archive and every final output. A target without outputs
    has its inputs checked themselves, so a lost fold folder (e.g. a killed forced rerun) is remade,
    and the tables and archive after it, although an older archive still exists."""
    input:
        archive=f"{RESULTS}/archive/{PLAN.study}.tar.gz",
        sha256=f"{RESULTS}/archive/{PLAN.study}.tar.gz.sha256",
        final=get_final_output(),


rule write_archive:
    """Tables, figures, QC summary and report (when present), the manifest, config, sample sheet
    and env files in one reproducible .tar.gz with a MANIFEST.sha256; check it with
    `oncoflow verify-archive`."""
    input:
        final=get_final_output(),
        provenance=f"{RESULTS}/provenance.json",
        splits=f"{RESULTS}/folds/splits.tsv",
        samples=config["cohort"]["samples"],
        config_files=[str(f) for f in workflow.configfiles],
        envs=sorted(str(p) for p in (REPO / "envs").glob("*.yaml")),
        pyproject=str(REPO / "pyproject.toml"),
    output:
        archive=f"{RESULTS}/archive/{PLAN.study}.tar.gz",
        # its identity outside it (sha256sum's format), for the paper's data availability statement
        sha256=f"{RESULTS}/archive/{PLAN.study}.tar.gz.sha256",
    log:
        f"{RESULTS}/logs/write_archive/write_archive.log",
    benchmark:
        f"{RESULTS}/benchmarks/write_archive/write_archive.tsv"
    localrule: True
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        root=PLAN.study,
        config=config,
        # archive name -> path, each included when present (the report: `snakemake --report`)
        folders=PLAN.archive_folders,
    script:
        "../scripts/archive_results.py"
