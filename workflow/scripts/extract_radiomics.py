"""Rule extract_radiomics: IBSI features of every subject's image inside its tumor mask."""
import json
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.radiomics.features import ExtractionSettings, extract_cohort

settings = ExtractionSettings.from_config(dict(sm.params.settings))
inputs = {s: (Path(i), Path(m)) for s, i, m in zip(sm.params.subjects, sm.input.images, sm.input.tumor_masks)}
table = extract_cohort(inputs, settings)
table.to_csv(sm.output.features, sep="\t", index=False, float_format="%.10g")
record = {"variant": sm.wildcards.variant, "modality": sm.params.modality, "subjects": len(table),
          "features": len(table.columns) - 1, **settings.record()}
if sm.params.superres:  # how the variant's x2 grid was made (sr: the GAN; interp: the interpolation)
    record["superres" if sm.wildcards.variant == "sr" else "interpolation"] = dict(sm.params.superres)
Path(sm.output.settings).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
