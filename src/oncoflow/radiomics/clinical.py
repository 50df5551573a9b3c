"""The clinical covariates of the radiomics branch: imputation and encoding fitted on a fold's
training patients (oncoflow.radiomics.models), saved with the model and re-applied to new
patients (oncoflow.radiomics.saved)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from oncoflow.radiomics.names import RadiomicsModelError


@dataclass
class ClinicalEncoder:
    """Imputation (training median / mode) and encoding of the clinical covariates. A column whose
    non-blank training values are all numbers with more than two distinct values is numeric;
    otherwise it is categorical (one-hot, first training category as reference)."""
    numeric: dict[str, float]
    categorical: dict[str, tuple[str, list[str]]]  # column -> (mode, categories)
    imputed: dict[str, int]

    @classmethod
    def fit(cls, table: pd.DataFrame, columns: list[str]) -> ClinicalEncoder:
        numeric, categorical, imputed = {}, {}, {}
        for c in columns:
            raw = table[c].astype(str).str.strip()
            given = raw[raw != ""]
            if given.empty:
                raise RadiomicsModelError(f"radiomics.clinical: column {c!r} is blank for every training patient")
            values = pd.to_numeric(given, errors="coerce")
            if values.notna().all() and values.nunique() > 2:
                numeric[c] = float(values.median())
            else:
                cats = sorted(given.unique())
                mode = given.value_counts().sort_index().idxmax()
                categorical[c] = (mode, cats)
            imputed[c] = int((raw == "").sum())
        return cls(numeric, categorical, imputed)

    def transform(self, table: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c, median in self.numeric.items():
            raw = table[c].astype(str).str.strip()
            values = pd.to_numeric(raw.where(raw != ""), errors="coerce")
            bad = raw[(raw != "") & values.isna()]
            if len(bad):
                raise RadiomicsModelError(f"radiomics.clinical: column {c!r}: subject {bad.index[0]!r} has "
                                          f"non-numeric value {bad.iloc[0]!r}")
            out[c] = values.fillna(median).to_numpy(dtype=float)
        for c, (mode, cats) in self.categorical.items():
            raw = table[c].astype(str).str.strip().replace("", mode)
            for cat in cats[1:]:
                out[f"{c}={cat}"] = (raw == cat).to_numpy(dtype=float)
        return pd.DataFrame(out, index=table.index)

    def unseen_categories(self, table: pd.DataFrame) -> list[tuple[str, str, str]]:
        """(subject, column, value) of each non-blank category that training never saw: transform
        encodes it as the reference category."""
        out = []
        for c, (_mode, cats) in self.categorical.items():
            raw = table[c].astype(str).str.strip()
            out += [(str(subject), c, value) for subject, value in raw[(raw != "") & ~raw.isin(cats)].items()]
        return out

    def export(self) -> dict:
        """The training fills and categories (oncoflow.radiomics.saved)."""
        return {"numeric": dict(self.numeric),
                "categorical": {c: {"mode": m, "categories": list(cats)} for c, (m, cats) in self.categorical.items()}}

    @classmethod
    def from_saved(cls, saved: dict) -> ClinicalEncoder:
        return cls({c: float(v) for c, v in saved["numeric"].items()},
                   {c: (v["mode"], list(v["categories"])) for c, v in saved["categorical"].items()}, {})
