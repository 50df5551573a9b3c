"""Rule register_to_atlas: the subject's brain, brain mask and tumor mask on the template's grid."""
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.preprocess.atlas import register_to_atlas

atlas = sm.params.atlas
modalities = [k for k in sm.output.keys() if k not in ("brain_mask", "tumor_mask", "transform", "report",
                                                     "template_mask")]
register_to_atlas(
    sm.wildcards.subject,
    {m: Path(sm.input[m]) for m in modalities},
    Path(sm.input.brain_mask),
    Path(sm.input.tumor_mask) if sm.input.get("tumor_mask") else None,
    reference=sm.params.reference,
    outputs={m: Path(sm.output[m]) for m in modalities},
    mask_out=Path(sm.output.brain_mask),
    tumor_out=Path(sm.output.tumor_mask),
    transform_out=Path(sm.output.transform),
    report=Path(sm.output.report),
    template_mask_out=Path(sm.output.template_mask),
    template=atlas["template"],
    template_mask=atlas["template_mask"],
    resolution_mm=atlas["resolution_mm"],
    transform=atlas["transform"],
)
