"""Per-fold radiomics, clinical and combined models, written like the CNNs' predictions.

Model names: ``radiomics_<variant>`` (the LASSO rad-score of the features of one image variant,
``original`` or ``sr``), ``clinical`` (logistic regression on the clinical covariates of the sample
sheet) and ``combined_<variant>`` (logistic regression on that variant's rad-score and the clinical
covariates: a nomogram). Every parameter (imputation, scaling, filters, LASSO, regressions) is
fitted on the fold's ``train`` and ``val`` patients (``radiomics.fit_validation``, default; the
paper's 8:2 split fits on the whole training part), whose ``val`` predictions are cross-fitted for
the evaluation's threshold and recalibration; or on ``train`` only. ``test`` and ``external``
patients are only predicted.

The combined model is fitted on out-of-fold rad-scores of the training patients (each from a
rad-score fitted without that patient), so it does not over-trust the in-sample rad-score.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from oncoflow.harmonisation import HarmonisationSettings, harmonise, site_series
from oncoflow.radiomics.clinical import ClinicalEncoder
from oncoflow.radiomics.names import RadiomicsModelError, parse_model
from oncoflow.radiomics.saved import SAVED_FORMAT, check_saved_model
from oncoflow.radiomics.selection import (
    SelectionSettings,
    fit_radscore,
    out_of_fold_scores,
)

FIT_ROLE = "train"
#: Roles the models are fitted on with radiomics.fit_validation (the default).
FIT_ROLES = ("train", "val")
#: Groups the validation patients are cross-fitted in (radiomics.fit_validation).
CROSS_FIT_GROUPS = 5
PREDICTION_COLUMNS = ["subject", "fold", "model", "role", "y_true", "probability"]


def _standardise(train: pd.DataFrame, other: pd.DataFrame):
    mean, sd = train.mean(), train.std(ddof=0).replace(0, 1.0)
    return (train - mean) / sd, (other - mean) / sd, mean, sd


def fit_fold(name: str, fold: int, splits: pd.DataFrame, sheet: pd.DataFrame, clinical: list[str],
             settings: SelectionSettings, features: pd.DataFrame | None = None,
             fit_validation: bool = True,
             harmonisation: HarmonisationSettings | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, coefficients) of model ``name`` in ``fold`` (:func:`fit_fold_model`)."""
    preds, coefs, _ = fit_fold_model(name, fold, splits, sheet, clinical, settings, features, fit_validation,
                                     harmonisation)
    return preds, coefs


def fit_fold_model(name: str, fold: int, splits: pd.DataFrame, sheet: pd.DataFrame, clinical: list[str],
                   settings: SelectionSettings, features: pd.DataFrame | None = None,
                   fit_validation: bool = True, harmonisation: HarmonisationSettings | None = None,
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(predictions, coefficients, the fitted model as numbers) of model ``name`` in ``fold``.

    ``splits``: folds/splits.tsv; ``sheet``: the sample sheet indexed by subject (clinical
    columns); ``features``: the variant's features.tsv (radiomics and combined models).
    ``fit_validation`` (radiomics.fit_validation): fit on the fold's train + inner-validation
    patients (all of its training part, as a paper's 8:2 split); the validation patients' own
    predictions, from which evaluation takes the threshold and recalibration, are then cross-fitted
    in :data:`CROSS_FIT_GROUPS` seeded, label-blind groups (each group from the model refitted on
    the other train + val patients). ``harmonisation``: ComBat on the features, refitted with
    every rad-score on that rad-score's fitting patients only (sites: the splits' ``site``).
    The saved model (oncoflow.radiomics.saved) is the one that predicted the test and external
    patients; it is checked here to reproduce their probabilities."""
    part = splits[splits["fold"] == fold].set_index("subject")
    if part.empty:
        raise RadiomicsModelError(f"no fold {fold} in the splits table")
    subjects = part.index.tolist()
    roles = FIT_ROLES if fit_validation else (FIT_ROLE,)
    fit = part.index[part["role"].isin(roles)].tolist()
    y = part["label"].astype(int)
    sites = site_series(part) if harmonisation is not None else None
    harmonised = (sites, harmonisation)
    probability, coef_table, saved = _fit_predict(name, fit, subjects, y, sheet, clinical, settings, features,
                                                  harmonised)
    saved.update(fold=fold, n_fit=len(fit))
    if harmonisation is None:
        held_out = part.index[~part["role"].isin(FIT_ROLES)].tolist()
        check_saved_model(saved, probability.loc[held_out], features, sheet, tolerance=1e-9)
    if fit_validation:
        # Seeded groups of validation patients, drawn without their labels (so no label can reach its
        # own patient's score through the partition); each group is predicted by the model refitted
        # on every other train + val patient.
        val = np.array(part.index[part["role"] == "val"])
        order = np.random.default_rng(settings.seed + fold).permutation(len(val))
        for group in np.array_split(val[order], min(CROSS_FIT_GROUPS, len(val))):
            rest = [f for f in fit if f not in set(group)]
            p, _, _ = _fit_predict(name, rest, list(group), y, sheet, clinical, settings, features, harmonised)
            probability.loc[list(group)] = p.loc[list(group)]
    preds = pd.DataFrame({"subject": subjects, "fold": fold, "model": name, "role": part["role"].to_numpy(),
                          "y_true": y.to_numpy(), "probability": probability.loc[subjects].to_numpy()})
    coef_table.insert(0, "fold", fold)
    coef_table.insert(1, "model", name)
    coef_table.insert(2, "n_train", len(fit))
    return preds[PREDICTION_COLUMNS], coef_table, saved


def _fit_predict(name: str, train: list[str], subjects: list[str], y: pd.Series, sheet: pd.DataFrame,
                 clinical: list[str], settings: SelectionSettings,
                 features: pd.DataFrame | None,
                 harmonised: tuple[pd.Series | None, HarmonisationSettings | None] = (None, None),
                 ) -> tuple[pd.Series, pd.DataFrame, dict]:
    """(probability of ``subjects``, coefficients, the model as numbers) of model ``name`` fitted
    on ``train`` (``harmonised``: the fold's sites and the ComBat settings, fitted on ``train`` here)."""
    kind, variant = parse_model(name)
    coefs: list[pd.DataFrame] = []
    saved: dict = {"format": SAVED_FORMAT, "model": name, "kind": kind, "variant": variant,
                   "harmonisation": harmonised[1].method if harmonised[1] is not None else "none"}
    everyone = list(dict.fromkeys([*train, *subjects]))
    if kind in ("radiomics", "combined"):
        if features is None:
            raise RadiomicsModelError(f"{name}: needs the {variant} features table")
        feats = features.set_index("subject")
        missing = [s for s in everyone if s not in feats.index]
        if missing:
            raise RadiomicsModelError(f"{name}: subject {missing[0]!r} has no row in the {variant} features table")
        feats = feats.loc[everyone]
        if harmonised[1] is not None:
            feats, _ = harmonise(feats, harmonised[0], train, harmonised[1])
        rad = fit_radscore(feats.loc[train], y.loc[train].to_numpy(), settings)
        table = rad.coefficients()
        table.insert(0, "block", "radscore")
        coefs.append(table)
        score = pd.Series(rad.score(feats), index=everyone)
        saved["radscore"] = rad.export()
    if kind == "radiomics":
        probability = 1.0 / (1.0 + np.exp(-score.to_numpy()))
    else:
        missing = [c for c in clinical if c not in sheet.columns]
        if missing:
            raise RadiomicsModelError(f"radiomics.clinical: sample sheet has no column {missing[0]!r}")
        encoder = ClinicalEncoder.fit(sheet.loc[train], clinical)
        design = encoder.transform(sheet.loc[everyone])
        if kind == "combined":
            oof = pd.Series(out_of_fold_scores(feats.loc[train], y.loc[train].to_numpy(), settings, rad.c),
                            index=train)
            design.insert(0, "radscore", score)
            fit_design = design.loc[train].copy()
            fit_design["radscore"] = oof  # out-of-fold rad-scores for fitting; in-sample score to predict
        else:
            fit_design = design.loc[train]
        z_train, z_all, mean, sd = _standardise(fit_design, design)
        model = LogisticRegression(C=1.0, max_iter=1000).fit(z_train.to_numpy(), y.loc[train].to_numpy())
        probability = model.predict_proba(z_all.to_numpy())[:, 1]
        rows = [{"block": kind, "term": t, "status": "selected", "coefficient": float(c), "train_mean": float(mean[t]),
                 "train_sd": float(sd[t])} for t, c in zip(design.columns, model.coef_[0])]
        rows.append({"block": kind, "term": "(intercept)", "status": "selected",
                     "coefficient": float(model.intercept_[0]), "train_mean": np.nan, "train_sd": np.nan})
        for c, n in encoder.imputed.items():
            fill = encoder.numeric.get(c, encoder.categorical.get(c, ("",))[0])
            rows.append({"block": kind, "term": f"(imputed {c})", "status": f"{n} training patient(s) blank",
                         "coefficient": np.nan, "train_mean": np.nan, "train_sd": np.nan, "fill": str(fill)})
        coefs.append(pd.DataFrame(rows))
        saved["clinical"] = {"columns": list(clinical), "encoder": encoder.export(), "terms": list(design.columns),
                             "mean": [float(mean[t]) for t in design.columns],
                             "sd": [float(sd[t]) for t in design.columns],
                             "coefficients": [float(c) for c in model.coef_[0]],
                             "intercept": float(model.intercept_[0])}
    return (pd.Series(np.asarray(probability, dtype=float), index=everyone).loc[subjects],
            pd.concat(coefs, ignore_index=True), saved)
