rule fuse_predictions:
    """Late fusion of the single-modality models within one fold: the mean, or a stacking model
    (lr, Platt-scaled linear svm) fitted on the out-of-sample predictions of the fold's
    inner-validation patients only, never on its test patients (oncoflow.fusion.late)."""
    input:
        get_fusion_inputs,
    output:
        predictions=f"{RESULTS}/models/fusion_{{method}}/fold{{fold}}/predictions.tsv",
    log:
        f"{RESULTS}/logs/fuse_predictions/{{method}}_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fuse_predictions/{{method}}_fold{{fold}}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        seed=config["cv"]["seed"],
    script:
        "../scripts/fuse_predictions.py"
