"""Radiomics branch: IBSI features inside the lesion mask (features), per-fold feature selection and
LASSO rad-score (selection), rad-score, clinical and combined models (models)."""
