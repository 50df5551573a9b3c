"""Patient-level, stratified, seeded cross-validation folds with an inner validation split.

One row per (subject, fold) with role train / val / test / external, written to a TSV a reviewer can
audit. External-cohort subjects are never train or val in any fold.

Repeated cross-validation (``cv.repeats`` R > 1): repeat r is a complete, independent k-fold split
with its own seed (``seed + REPEAT_SEED_STEP * r``; repeat 0 is exactly the single split). Folds
are numbered globally, fold = r * k + (fold within the repeat), so every fold's model, pretraining
and fusion keep the ``fold<k>`` layout and their seeds (``seed + fold``) differ between repeats.
The splits table gains a ``repeat`` column only when R > 1.

Sites (``cohort.site``: a sample-sheet column) add a ``site`` column to the splits table, and
choose among the schemes of ``cv.scheme`` (:data:`SCHEMES`, default ``stratified``):

- ``stratified``: the patient-level stratified k-fold above; sites only ride along (the folds are
  those of a sheet without sites, byte for byte apart from the column).
- ``site_grouped``: stratified k-fold grouped by site (scikit-learn's StratifiedGroupKFold,
  shuffled with the same seed): a site's internal patients are all in one test fold, so every
  test fold holds sites its model never trained on. Needs at least ``folds`` sites.
- ``leave_one_site_out``: one test fold per qualifying site, in sorted site order. A site
  qualifies when it has both classes and at least ``min_site_size`` internal patients (an AUC
  needs both; a smaller site's AUC is noise); the other sites' patients train in every fold and
  are never tested. Fewer than two qualifying sites is an error naming every site. ``folds`` and
  ``repeats`` do not apply (one split; the fold count is the number of qualifying sites).

In every scheme the inner validation split is patient-level and stratified inside each training
fold (as before), and external cohorts are scored by every fold's model. When the sheet holds
several external cohorts, the splits table gains a ``cohort`` column (the sheet's value), so that
evaluation reports each external cohort on its own (``external:<name>``), never pooled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from oncoflow.config import ConfigError, site_column
from oncoflow.sheet import site_names

ROLES = ("train", "val", "test", "external")
# The patients of a fold whose images (never labels) label-free pretraining may use.
PRETRAIN_ROLES = ("train", "val")
#: Seed offset between repeats of the cross-validation (repeat 0 uses cv.seed itself).
REPEAT_SEED_STEP = 1000
#: cv.scheme values; the first is the default (the schema's, tests/test_config_defaults.py).
SCHEMES = ("stratified", "site_grouped", "leave_one_site_out")
#: cv.min_site_size default: the smallest site leave-one-site-out tests on.
MIN_SITE_SIZE = 10


class FoldError(ValueError):
    pass


def make_folds(
    samples: pd.DataFrame, *, label: str, folds: int, seed: int, val_fraction: float,
    external_cohorts: tuple[str, ...] = ("external",), repeats: int = 1, scheme: str = SCHEMES[0],
    site: str | None = None, min_site_size: int = MIN_SITE_SIZE,
) -> pd.DataFrame:
    """Assign roles per fold. ``samples`` has one row per subject with columns subject, cohort and
    the binary ``label`` column (0/1), and the ``site`` column when given. ``repeats`` > 1: that
    many independent splits, folds numbered globally; ``scheme``: see the module docstring."""
    # Here, not at the top: the study plan imports this module at parse time (every Snakemake job's
    # start) for the fold settings, and sklearn.model_selection costs 0.6-0.8 CPU s to import.
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

    if repeats < 1:
        raise FoldError(f"cv.repeats must be at least 1, got {repeats}")
    if scheme not in SCHEMES:
        raise FoldError(f"cv.scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    if scheme != "stratified" and site is None:
        raise FoldError(f"cv.scheme {scheme!r} needs cohort.site (the sample-sheet column naming each "
                        "subject's site)")
    if scheme == "leave_one_site_out" and repeats != 1:
        raise FoldError("cv.scheme 'leave_one_site_out' is a single split: set cv.repeats to 1")
    if samples["subject"].duplicated().any():
        dup = samples.loc[samples["subject"].duplicated(), "subject"].tolist()
        raise FoldError(f"duplicate subjects in sample sheet: {dup}")
    if site:
        samples = samples.assign(**{site: site_names(samples[site])})
    is_external = samples["cohort"].isin(external_cohorts)
    internal = samples[~is_external].reset_index(drop=True)
    counts = internal[label].value_counts()
    if len(counts) < 2:
        raise FoldError(f"label column {label!r} has a single class among internal subjects")
    if scheme != "leave_one_site_out" and counts.min() < folds:
        raise FoldError(f"cv.folds={folds} but the smaller class has only {counts.min()} internal "
                        "subjects (every test fold needs one of each class)")
    y = internal[label].to_numpy()
    rows: list[dict[str, object]] = []
    never_tested: set[str] = set()
    for repeat in range(repeats):
        base = seed + REPEAT_SEED_STEP * repeat
        if scheme == "leave_one_site_out":
            outer = list(_site_folds(internal, label, site, min_site_size))
            trained_only = set(internal.index) - {i for _, test in outer for i in test}
            never_tested = set(internal.loc[sorted(trained_only), "subject"])
        elif scheme == "site_grouped":
            groups = internal[site].to_numpy()
            if len(set(groups)) < folds:
                raise FoldError(f"cv.scheme 'site_grouped' with cv.folds={folds} needs at least {folds} "
                                f"internal sites; column {site!r} has {len(set(groups))} "
                                f"({', '.join(sorted(set(groups)))}): use fewer folds or leave_one_site_out")
            outer = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=base)
                         .split(internal, y, groups))
        else:
            outer = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=base).split(internal, y))
        n_outer = len(outer)
        for inner, (train_idx, test_idx) in enumerate(outer):
            fold = repeat * n_outer + inner
            train_sub = internal.iloc[train_idx]
            try:
                fit_idx, val_idx = train_test_split(
                    train_sub.index.to_numpy(), test_size=val_fraction, stratify=train_sub[label],
                    random_state=base + inner,
                )
            except ValueError as exc:
                raise FoldError(_inner_split_problem(fold, internal, train_idx, test_idx, label, site, exc)) from None
            for role, idx in (("train", fit_idx), ("val", val_idx), ("test", test_idx)):
                for i in sorted(idx):
                    rows.append({"subject": internal.at[i, "subject"], "fold": fold, "role": role,
                                 "label": int(internal.at[i, label]), "repeat": repeat,
                                 **({"site": internal.at[i, site]} if site else {})})
            for _, row in samples[is_external].iterrows():
                rows.append({"subject": row["subject"], "fold": fold, "role": "external",
                             "label": int(row[label]), "repeat": repeat,
                             **({"site": row[site]} if site else {})})
    out = pd.DataFrame(rows)
    columns = ["subject", "fold", "role", "label", *(["site"] if site else []), "repeat"]
    if samples.loc[is_external, "cohort"].nunique() > 1:  # several external cohorts: each its own
        out.insert(len(columns) - 1, "cohort", out["subject"].map(samples.set_index("subject")["cohort"]))
        columns.insert(len(columns) - 1, "cohort")
    out = out[columns]  # site and cohort beside the label, before repeat
    if repeats == 1:
        out = out.drop(columns="repeat")  # the single-split table keeps its columns and bytes
    check_no_leakage(out, never_tested=never_tested)
    if scheme == "site_grouped":
        check_sites_not_split(out)
    return out


def _inner_split_problem(fold: int, internal: pd.DataFrame, train_idx: np.ndarray, test_idx: np.ndarray,
                         label: str, site: str | None, exc: ValueError) -> str:
    """Why fold ``fold``'s training patients cannot give an inner validation split, naming its
    training and test sites (patients, positives) when there are sites: a grouped fold whose test
    site holds nearly everyone leaves a handful of patients (a one-patient site) to train on."""
    train = internal.iloc[train_idx]
    what = f"fold {fold} has {len(train)} training patients ({int(train[label].sum())} positive)"
    if site is not None:
        def sites(part: pd.DataFrame) -> str:
            return ", ".join(f"{name!r}: {len(g)} patient{'s' * (len(g) != 1)}, {int(g[label].sum())} positive"
                             for name, g in part.groupby(site, sort=True))
        tiny = sorted(n for n, g in internal.groupby(site) if len(g) < 2)
        what += (f" from site(s) {sites(train)}, testing on {sites(internal.iloc[test_idx])}"
                 + (f"; site(s) with one patient: {', '.join(map(repr, tiny))}" if tiny else ""))
    return (f"{what}: too few for an inner validation split of cv.val_fraction of them with both classes "
            f"({exc}). Merge small sites into a larger one in the sheet, use fewer folds, or another cv.scheme")


def _site_folds(internal: pd.DataFrame, label: str, site: str | None,
                min_site_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Leave-one-site-out: (train positions, test positions) per qualifying site, sites sorted."""
    assert site is not None
    qualifying, described = [], []
    for name, part in internal.groupby(site, sort=True):
        n, pos = len(part), int(part[label].sum())
        ok = n >= min_site_size and 0 < pos < n
        described.append(f"{name} ({n} patient{'' if n == 1 else 's'}, {pos} positive{'' if ok else ': trains only'})")
        if ok:
            qualifying.append(name)
    if len(qualifying) < 2:
        raise FoldError(f"cv.scheme 'leave_one_site_out' needs at least 2 sites with both classes and "
                        f"at least cv.min_site_size={min_site_size} internal patients; column {site!r} has "
                        f"{'; '.join(described)}. Lower cv.min_site_size, or use 'stratified'")
    for name in qualifying:
        is_test = (internal[site] == name).to_numpy()
        yield np.flatnonzero(~is_test), np.flatnonzero(is_test)


def leave_one_site_out_sites(samples: pd.DataFrame, *, label: str, site: str,
                             external_cohorts: tuple[str, ...], min_site_size: int) -> list[str]:
    """The qualifying sites, in fold order (fold k tests the k-th)."""
    internal = samples[~samples["cohort"].isin(external_cohorts)].reset_index(drop=True)
    return [str(internal.at[test[0], site]) for _, test in _site_folds(internal, label, site, min_site_size)]


def check_sites_not_split(splits: pd.DataFrame) -> None:
    """Grouped folds: every internal site's test patients lie in one fold of each repeat."""
    by = ["repeat", "site"] if "repeat" in splits.columns else ["site"]
    tested = splits[splits["role"] == "test"].groupby(by)["fold"].nunique()
    if (tested > 1).any():
        raise FoldError(f"site(s) split over several test folds: {tested[tested > 1].index.tolist()[:5]}")


def check_no_leakage(splits: pd.DataFrame, never_tested: set[str] = frozenset()) -> None:
    """Within a fold each subject has exactly one role; across folds each internal subject is
    tested exactly once (``never_tested``: leave-one-site-out's training-only subjects, never)."""
    per_fold = splits.groupby(["fold", "subject"]).size()
    if (per_fold > 1).any():
        bad = per_fold[per_fold > 1].index.tolist()[:5]
        raise FoldError(f"subjects with several roles in one fold: {bad}")
    by = ["repeat", "subject"] if "repeat" in splits.columns else ["subject"]
    tested = splits[splits["role"] == "test"].groupby(by).size()
    if (tested != 1).any():
        raise FoldError(f"subjects tested more than once in a repeat: {tested[tested != 1].index.tolist()[:5]}")
    internal = set(splits.loc[splits["role"] != "external", "subject"])
    untested = internal - set(splits.loc[splits["role"] == "test", "subject"])
    if untested != set(never_tested):
        odd = sorted(untested ^ set(never_tested))[:5]
        raise FoldError(f"internal subjects never tested (or tested though they should not be): {odd}")


def pretrain_subjects(splits: pd.DataFrame, fold: int) -> list[str]:
    """The fold's training and inner-validation patients, in table order: all that in-domain
    pretraining for this fold may see (never its test patients, never an external cohort)."""
    part = splits[splits["fold"] == fold]
    if part.empty:
        raise FoldError(f"no fold {fold} in the splits table (folds {sorted(splits['fold'].unique())})")
    return part.loc[part["role"].isin(PRETRAIN_ROLES), "subject"].tolist()


def check_pretrain_inputs(subjects: list[str], splits: pd.DataFrame, fold: int) -> None:
    """The subjects a pretraining job was given must be exactly the fold's train + val patients:
    a test or external patient is an error naming it and its role."""
    part = splits[splits["fold"] == fold].set_index("subject")
    allowed = set(pretrain_subjects(splits, fold))
    for s in subjects:
        if s not in allowed:
            role = part.at[s, "role"] if s in part.index else "not in the splits table"
            raise FoldError(f"pretraining for fold {fold} was given subject {s!r} (role: {role}); "
                            f"it may only see the fold's {' and '.join(PRETRAIN_ROLES)} patients")
    missing = sorted(allowed - set(subjects))
    if missing:
        raise FoldError(f"pretraining for fold {fold} lacks {len(missing)} of the fold's train/val "
                        f"patients (first: {missing[:3]}): splits.tsv and the rule's inputs disagree")


def fold_settings(config: dict[str, Any]) -> dict[str, Any]:
    """make_folds' keyword arguments from the validated config (one home: split_folds, the DAG's
    fold check and in-domain pretraining all split with these)."""
    cv = config["cv"]
    return {"folds": cv["folds"], "seed": cv["seed"], "val_fraction": cv["val_fraction"],
            "repeats": cv["repeats"], "external_cohorts": tuple(config["cohort"]["external"]),
            "scheme": cv["scheme"], "site": site_column(config), "min_site_size": cv["min_site_size"]}


def split_params(config: dict[str, Any]) -> dict[str, Any]:
    """split_folds' ``cv`` params: config["cv"] as before sites existed, plus the scheme keys and
    the site column only when they change the split or the table (a params change reruns it)."""
    cv = dict(config["cv"])
    scheme, min_site_size = cv.pop("scheme"), cv.pop("min_site_size")
    if scheme != SCHEMES[0]:
        cv["scheme"] = scheme
    if scheme == "leave_one_site_out":
        cv["min_site_size"] = min_site_size
    if site_column(config):
        cv["site"] = site_column(config)
    return cv


def check_folds(config: dict[str, Any], samples: pd.DataFrame) -> None:
    """Make the folds now, as split_folds will (same function, same seed): too many folds for the
    positives, or an inner validation split too small for the class balance, stops the run while
    the DAG is built (split_folds' input function; front-half targets need no folds) instead of
    failing split_folds with scikit-learn's message."""
    cv = config["cv"]
    internal = samples[~samples["cohort"].isin(config["cohort"]["external"])]
    counts = internal["y"].value_counts()
    settings = fold_settings(config)
    try:
        make_folds(samples.reset_index(drop=True), label="y", **settings)
    except ValueError as exc:
        raise ConfigError(
            f"config: cv: scheme {settings['scheme']}, folds {cv['folds']}, val_fraction {cv['val_fraction']} "
            "cannot be split from "
            f"{len(internal)} internal subjects ({int(counts.get(1, 0))} positive, {int(counts.get(0, 0))} "
            f"negative): {exc}. Use fewer folds, a larger cv.val_fraction, or more subjects") from None
