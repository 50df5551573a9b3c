"""Characteristics by partition (Table 1; CLAIM 2024 item 36, TRIPOD+AI item 20b).

Label, age, sex and the configured clinical columns (those that exist in the sample sheet), per
cohort (internal / each external cohort) and per cross-validation test fold. Groups that are not
random are tested for a difference: the cohorts, and the test folds when they are grouped by site
(chi-square, Fisher's exact test for a 2 x 2 table, for categorical columns; Mann-Whitney U for two
groups or Kruskal-Wallis for more for numeric ones). Test folds drawn at random (``stratified``)
are described, not tested (:data:`RANDOM`): a difference between randomised groups can only be
chance, so a test of it tests the randomisation (CONSORT 2010, explanation of item 15).

With sites (``cohort.site``), the site column is a categorical row block after the label: n (%)
per site in each cohort and test fold. When no site lies in two of the compared groups (folds
grouped by site: ``site_grouped``, ``leave_one_site_out``; internal and external cohorts from
different sites), the groups differ in site by construction and no test is run
(:data:`BY_DESIGN`). When the test folds are grouped by site, each fold's header names its sites
(under leave-one-site-out, the one site it tests); sites that are only trained on show 0 in
every fold column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from oncoflow.sheet import site_names

DEFAULT_COLUMNS = ("age", "sex")
#: The test column of the site block where no site lies in two of the compared groups.
BY_DESIGN = "none: no site in two groups"
#: The test column across test folds drawn at random (not grouped by site).
RANDOM = "none: random folds"


def characteristics_columns(samples: pd.DataFrame, label: str, clinical: list[str],
                            site: str | None = None) -> list[str]:
    """The label, the site column (when given), then age, sex and the clinical columns that the
    sheet has (in that order)."""
    first = [label, *([site] if site else [])]
    return [*first, *dict.fromkeys(c for c in (*DEFAULT_COLUMNS, *clinical) if c in samples.columns and c not in first)]


def _fold_key(fold: int, part: pd.DataFrame, grouped: bool) -> str:
    """The header of a test-fold column; with folds grouped by site, the fold's sites in it."""
    if not grouped:
        return f"fold {fold} test"
    sites = sorted(part["site"].astype(str).unique())
    return f"fold {fold} test: site{'s' if len(sites) > 1 else ''} {', '.join(sites)}"


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


def _shared(groups: list[pd.Series]) -> bool:
    """Whether some value occurs in two of the groups."""
    seen: set[str] = set()
    for g in groups:
        values = set(g.dropna().astype(str))
        if seen & values:
            return True
        seen |= values
    return False


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
                          external_cohorts: list[str], site: str | None = None) -> pd.DataFrame:
    """characteristics.tsv: rows = variable x level, columns = partitions (n in the header), plus
    the test and p-value across cohorts and across the test folds. ``site``: the sample-sheet
    column naming each subject's site (cohort.site), or None."""
    sheet = samples.astype({c: str for c in samples.columns if c not in ("y",)}).set_index("subject")
    groups: dict[str, list[str]] = {}
    for cohort in sorted(sheet["cohort"].unique()):
        kind = "external" if cohort in external_cohorts else "internal"
        groups[f"{kind} '{cohort}'"] = sheet.index[sheet["cohort"] == cohort].tolist()
    cohort_keys = list(groups)
    test_folds = splits[splits["role"] == "test"]
    # folds grouped by site: no site is tested in two folds (of a repeat)
    grouped = site is not None and "site" in splits.columns and not test_folds.groupby(
        [c for c in ("repeat", "site") if c in splits.columns])["fold"].nunique().gt(1).any()
    for fold, part in test_folds.groupby("fold", sort=True):
        groups[_fold_key(int(fold), part, grouped)] = part["subject"].tolist()
    fold_keys = [k for k in groups if k.startswith("fold ")]
    rows = []
    for column in characteristics_columns(samples, label, clinical, site):
        values = sheet[column].fillna("")
        if column == site:
            values = site_names(values)
        numeric = _numeric(values) is not None
        levels = sorted(v for v in values.astype(str).unique() if v.strip())
        per_group = {k: _summaries(values.loc[v], numeric, levels) for k, v in groups.items()}
        tests = {}
        for scope, keys in (("cohorts", cohort_keys), ("folds", fold_keys)):
            series = [(pd.to_numeric(values.loc[groups[k]], errors="coerce") if numeric
                       else values.loc[groups[k]].replace("", np.nan)) for k in keys]
            tests[scope] = (RANDOM, float("nan")) if scope == "folds" and not grouped else _test(series, numeric)
            if column == site and sum(g.notna().any() for g in series) > 1 and not _shared(series):
                tests[scope] = (BY_DESIGN, float("nan"))
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
