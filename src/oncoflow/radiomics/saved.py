"""A fitted radiomics, clinical or combined fold model as a small, versioned, human-readable file
(``models/<name>/fold<k>/model.json``, written by rule fit_radiomics_model) and its application to
new patients (``oncoflow predict``). Everything in it was fitted on the fold's training patients:

  radscore   the LASSO rad-score: each feature with a nonzero coefficient, its training median
             (imputation of a value MIRP could not compute), mean and sd (standardisation), and the
             intercept; the rad-score is the linear predictor, ``radiomics_<variant>``'s
             probability its sigmoid
  clinical   the clinical covariates' encoder (training medians; modes and categories, one-hot with
             the first as reference), the logistic regression's terms with their training mean and
             sd, coefficients and intercept (``combined_<variant>``: the rad-score is a term)

Models whose features ComBat harmonised (``harmonisation: combat``) are saved without the fold's
ComBat parameters and refused here: the bundle leaves them out, naming why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oncoflow import atomic
from oncoflow.radiomics.clinical import ClinicalEncoder

SAVED_FORMAT = 1


class SavedModelError(ValueError):
    pass


def read_saved_model(path: Path) -> dict[str, Any]:
    saved = json.loads(Path(path).read_text())
    if saved.get("format") != SAVED_FORMAT:
        raise SavedModelError(f"{path}: saved-model format {saved.get('format')!r}; this oncoflow reads "
                              f"{SAVED_FORMAT} (rerun fit_radiomics_model)")
    return saved


def write_saved_model(saved: dict[str, Any], path: Path) -> None:
    atomic.write_text(path, json.dumps(saved, indent=1) + "\n")


def radscore(saved: dict[str, Any], features: pd.DataFrame) -> np.ndarray:
    """The rad-score (log-odds) of each row of ``features`` (columns: feature names)."""
    block = saved["radscore"]
    names = [f["name"] for f in block["features"]]
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise SavedModelError(f"{saved['model']}: the features table lacks {len(missing)} feature(s) the model "
                              f"uses, e.g. {missing[0]!r} (extracted with other radiomics settings?)")
    x = features[names].to_numpy(dtype=float)
    x = np.where(np.isnan(x), [f["median"] for f in block["features"]], x)
    z = (x - [f["mean"] for f in block["features"]]) / np.array([f["sd"] for f in block["features"]])
    return z @ np.array([f["coefficient"] for f in block["features"]], dtype=float) + block["intercept"]


def apply_saved_model(saved: dict[str, Any], subjects: list[str], features: pd.DataFrame | None,
                      sheet: pd.DataFrame) -> pd.Series:
    """The probability of each of ``subjects`` under a saved fold model. ``features``: the variant's
    features table (column ``subject``; radiomics and combined models); ``sheet``: the sample sheet
    indexed by subject, as strings (the clinical columns; blanks get the training fill)."""
    name = saved["model"]
    if saved.get("harmonisation", "none") != "none":
        raise SavedModelError(f"{name}: fitted on ComBat-harmonised features ({saved['harmonisation']}); the "
                              "fold's ComBat parameters are not saved, so it cannot be applied to new patients")
    score = None
    if "radscore" in saved:
        if features is None:
            raise SavedModelError(f"{name}: needs the {saved['variant']} features table")
        table = features.set_index("subject") if "subject" in features.columns else features
        absent = [s for s in subjects if s not in table.index]
        if absent:
            raise SavedModelError(f"{name}: subject {absent[0]!r} has no row in the {saved['variant']} features table")
        score = radscore(saved, table.loc[subjects])
    if "clinical" not in saved:
        return pd.Series(1.0 / (1.0 + np.exp(-score)), index=subjects)
    block = saved["clinical"]
    missing = [c for c in block["columns"] if c not in sheet.columns]
    if missing:
        raise SavedModelError(f"{name}: the sample sheet has no column {missing[0]!r} (a clinical covariate of the "
                              f"model: radiomics.clinical is {', '.join(block['columns'])}); add it (blank values "
                              "are imputed with the training fill)")
    encoder = ClinicalEncoder.from_saved(block["encoder"])
    for subject, column, value in encoder.unseen_categories(sheet.loc[subjects]):
        categories = encoder.categorical[column][1]
        print(f"{name}: subject {subject!r}: {column} = {value!r} never occurred in training (categories "
              f"{', '.join(map(repr, categories))}); encoded as the reference category {categories[0]!r}",
              file=sys.stderr)
    design = encoder.transform(sheet.loc[subjects, block["columns"]])
    if score is not None:
        design.insert(0, "radscore", score)
    z = (design[block["terms"]].to_numpy(dtype=float) - block["mean"]) / np.array(block["sd"], dtype=float)
    logit = z @ np.array(block["coefficients"], dtype=float) + block["intercept"]
    return pd.Series(1.0 / (1.0 + np.exp(-logit)), index=subjects)


def check_saved_model(saved: dict[str, Any], expected: pd.Series, features: pd.DataFrame | None,
                      sheet: pd.DataFrame, tolerance: float) -> float:
    """The largest difference between the saved model's probabilities and ``expected`` (subject ->
    probability of the fold's fitted model); an error when it exceeds ``tolerance``."""
    if saved.get("harmonisation", "none") != "none" or expected.empty:
        return 0.0
    mine = apply_saved_model(saved, list(expected.index), features, sheet)
    worst = float(np.max(np.abs(mine.to_numpy() - expected.to_numpy(dtype=float))))
    if not worst <= tolerance:
        raise SavedModelError(f"{saved['model']} fold {saved.get('fold')}: the saved model's probabilities differ "
                              f"from the fold's predictions by {worst:.2g} (> {tolerance:g}); its inputs changed "
                              "after fitting (rerun the workflow first)")
    return worst
