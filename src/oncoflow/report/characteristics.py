"""Characteristics by partition (Table 1; CLAIM 2024 item 36, TRIPOD+AI item 20b).

Label, age, sex and the configured clinical columns (those that exist in the sample sheet), per
cohort (internal / each external cohort) and per cross-validation test fold, with a test of
difference across the groups: chi-square (Fisher's exact test for a 2 x 2 table) for categorical
columns, Mann-Whitney U (two groups) or Kruskal-Wallis (more) for numeric ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

DEFAULT_COLUMNS = ("age", "sex")


def characteristics_columns(samples: pd.DataFrame, label: str, clinical: list[str]) -> list[str]:
    """The label, then age, sex and the clinical columns that the sheet has (in that order)."""
    return [label, *dict.fromkeys(c for c in (*DEFAULT_COLUMNS, *clinical) if c in samples.columns and c != label)]


def _numeric(values: pd.Series) -> pd.Series | None:
    present = values[values.astype(str).str.strip() != ""]
    converted = pd.to_numeric(present, errors="coerce")
    return converted if len(present) and converted.notna().all() and present.nunique() > 5 else None


def _test(groups: list[pd.Series], numeric: bool) -> tuple[str, float]:
    groups = [g.dropna() for g in groups if len(g.dropna())]
    if len(groups) < 2:
        return "", float("nan")
    if numeric:
        if any(g.nunique() == 0 for g in groups) or pd.concat(groups).nunique() < 2:
            return "", float("nan")
        if len(groups) == 2:
            return "Mann-Whitney U", float(stats.mannwhitneyu(groups[0], groups[1]).pvalue)
        return "Kruskal-Wallis", float(stats.kruskal(*groups).pvalue)
    table = pd.crosstab(pd.concat(groups, keys=range(len(groups))).index.get_level_values(0),
                        pd.concat(groups).to_numpy())
    if table.shape[1] < 2:
        return "", float("nan")
    if table.shape == (2, 2):
        return "Fisher's exact", float(stats.fisher_exact(table.to_numpy())[1])
    return "chi-square", float(stats.chi2_contingency(table.to_numpy())[1])


def _summaries(values: pd.Series, numeric: bool, levels: list[str]) -> list[tuple[str, str]]:
    missing = int((values.astype(str).str.strip() == "").sum())
    if numeric:
        x = pd.to_numeric(values, errors="coerce").dropna()
        text = f"{x.median():.1f} [{x.quantile(0.25):.1f}, {x.quantile(0.75):.1f}]" if len(x) else "-"
        rows = [("median [IQR]", text)]
    else:
        present = values[values.astype(str).str.strip() != ""].astype(str)
        rows = [(f"= {lvl}", f"{int((present == lvl).sum())} ({(present == lvl).mean():.0%})" if len(present) else "0")
                for lvl in levels]
    if missing:
        rows.append(("missing", str(missing)))
    return rows


def characteristics_table(samples: pd.DataFrame, splits: pd.DataFrame, *, label: str, clinical: list[str],
                          external_cohorts: list[str]) -> pd.DataFrame:
    """characteristics.tsv: rows = variable x level, columns = partitions (n in the header), plus
    the test and p-value across cohorts and across the test folds."""
    sheet = samples.astype({c: str for c in samples.columns if c not in ("y",)}).set_index("subject")
    groups: dict[str, list[str]] = {}
    for cohort in sorted(sheet["cohort"].unique()):
        kind = "external" if cohort in external_cohorts else "internal"
        groups[f"{kind} '{cohort}'"] = sheet.index[sheet["cohort"] == cohort].tolist()
    cohort_keys = list(groups)
    test_folds = splits[splits["role"] == "test"]
    for fold, part in test_folds.groupby("fold", sort=True):
        groups[f"fold {fold} test"] = part["subject"].tolist()
    fold_keys = [k for k in groups if k.startswith("fold ")]
    rows = []
    for column in characteristics_columns(samples, label, clinical):
        values = sheet[column].fillna("")
        numeric = _numeric(values) is not None
        levels = sorted(v for v in values.astype(str).unique() if v.strip())
        per_group = {k: _summaries(values.loc[v], numeric, levels) for k, v in groups.items()}
        tests = {}
        for scope, keys in (("cohorts", cohort_keys), ("folds", fold_keys)):
            series = [(pd.to_numeric(values.loc[groups[k]], errors="coerce") if numeric
                       else values.loc[groups[k]].replace("", np.nan)) for k in keys]
            tests[scope] = _test(series, numeric)
        for i, (level, _) in enumerate(per_group[cohort_keys[0]]):
            row = {"variable": column, "level": level}
            row.update({f"{k} (n={len(groups[k])})": per_group[k][i][1] if i < len(per_group[k]) else ""
                        for k in groups})
            for scope in ("cohorts", "folds"):
                name, p = tests[scope]
                row[f"test across {scope}"] = name if i == 0 else ""
                row[f"p across {scope}"] = (f"{p:.3g}" if np.isfinite(p) else "") if i == 0 else ""
            rows.append(row)
    return pd.DataFrame(rows)
