"""Rule extract_deep_features: a pretrained encoder's features pooled in every subject's tumor."""
import json
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

from oncoflow.radiomics.deep import deep_settings, extract_deep_features

crops = dict(zip(sm.params.subjects, map(Path, sm.input.crops), strict=True))
modalities, crop = list(sm.params.modalities), dict(sm.params.crop)
table = extract_deep_features(crops, sm.wildcards.variant, modalities, depth=int(crop["depth"]), threads=sm.threads)
table.to_csv(sm.output.features, sep="\t", index=False, float_format="%.8g")
record = {"variant": sm.wildcards.variant, "subjects": len(table), "features": len(table.columns) - 1,
          **deep_settings(sm.wildcards.variant, modalities, crop)}
Path(sm.output.settings).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
