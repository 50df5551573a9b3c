# The interpolation control of the radiomics variant `sr`: each subject's radiomics image upsampled
# x2 along superres.axes by cubic B-spline (variant `interp`), on the generator's grid, with the
# tumor mask upsampled by the same nearest-neighbour rule as for `sr`.


rule interpolate_image:
    """The subject's radiomics image at x2 along superres.axes by cubic B-spline interpolation and
    its tumor mask on the same grid (nearest neighbour): no model, no other subject involved.
    """
    input:
        image=f"{RESULTS}/subjects/{{subject}}/coreg/{PLAN.radiomics_modality}.nii.gz",
        tumor_mask=get_feature_tumor_mask,
    output:
        image=f"{RESULTS}/subjects/{{subject}}/interp/{PLAN.radiomics_modality}.nii.gz",
        tumor_mask=f"{RESULTS}/subjects/{{subject}}/interp/tumor_mask.nii.gz",
    log:
        f"{RESULTS}/logs/interpolate_image/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/interpolate_image/{{subject}}.tsv"
    conda:
        "../../envs/superres.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        axes=config["superres"]["axes"],
        method=INTERP_METHOD,
    script:
        "../scripts/interpolate_image.py"
