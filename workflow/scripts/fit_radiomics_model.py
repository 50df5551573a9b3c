"""Rule fit_radiomics_model: one radiomics / clinical / combined model on one fold."""
import sys

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import pandas as pd

from oncoflow.harmonisation import HarmonisationSettings
from oncoflow.radiomics.models import fit_fold_model
from oncoflow.radiomics.saved import write_saved_model
from oncoflow.radiomics.selection import SelectionSettings

sheet = pd.read_csv(sm.input.samples, sep="\t", dtype=str, keep_default_na=False).set_index("subject", drop=False)
splits = pd.read_csv(sm.input.splits, sep="\t", dtype={"subject": str})
features = pd.read_csv(sm.input.features, sep="\t", dtype={"subject": str}) if sm.input.features else None
settings = SelectionSettings.from_config(dict(sm.params.selection), seed=int(sm.params.seed))
preds, coefs, model = fit_fold_model(sm.wildcards.radmodel, int(sm.wildcards.fold), splits, sheet,
                                     list(sm.params.clinical), settings, features,
                                     fit_validation=bool(sm.params.fit_validation),
                                     harmonisation=HarmonisationSettings.from_config(dict(sm.params.harmonisation)))
preds.to_csv(sm.output.predictions, sep="\t", index=False, float_format="%.6f")
coefs.to_csv(sm.output.coefficients, sep="\t", index=False, float_format="%.6g")
write_saved_model(model, sm.output.model)
chosen = coefs.loc[coefs["status"] == "selected", "term"].tolist()
print(f"{sm.wildcards.radmodel} fold {sm.wildcards.fold}: {len(chosen)} terms: {', '.join(chosen)}", file=sys.stderr)
