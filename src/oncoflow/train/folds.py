"""Patient-level, stratified, seeded cross-validation folds with an inner validation split.

One row per (subject, fold) with role train / val / test / external, written to a TSV a reviewer can
audit. External-cohort subjects are never train or val in any fold.
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

ROLES = ("train", "val", "test", "external")
# The patients of a fold whose images (never labels) label-free pretraining may use.
PRETRAIN_ROLES = ("train", "val")


class FoldError(ValueError):
    pass


def make_folds(
    samples: pd.DataFrame, *, label: str, folds: int, seed: int, val_fraction: float,
    external_cohorts: tuple[str, ...] = ("external",),
) -> pd.DataFrame:
    """Assign roles per fold. ``samples`` has one row per subject with columns subject, cohort and
    the binary ``label`` column (0/1)."""
    if samples["subject"].duplicated().any():
        dup = samples.loc[samples["subject"].duplicated(), "subject"].tolist()
        raise FoldError(f"duplicate subjects in sample sheet: {dup}")
    is_external = samples["cohort"].isin(external_cohorts)
    internal = samples[~is_external].reset_index(drop=True)
    counts = internal[label].value_counts()
    if len(counts) < 2:
        raise FoldError(f"label column {label!r} has a single class among internal subjects")
    if counts.min() < folds:
        raise FoldError(f"cv.folds={folds} but the smaller class has only {counts.min()} internal "
                        "subjects (every test fold needs one of each class)")
    y = internal[label].to_numpy()
    rows: list[dict[str, object]] = []
    outer = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train_idx, test_idx) in enumerate(outer.split(internal, y)):
        train_sub = internal.iloc[train_idx]
        fit_idx, val_idx = train_test_split(
            train_sub.index.to_numpy(), test_size=val_fraction, stratify=train_sub[label],
            random_state=seed + fold,
        )
        for role, idx in (("train", fit_idx), ("val", val_idx), ("test", test_idx)):
            for i in sorted(idx):
                rows.append({"subject": internal.at[i, "subject"], "fold": fold, "role": role,
                             "label": int(internal.at[i, label])})
        for _, row in samples[is_external].iterrows():
            rows.append({"subject": row["subject"], "fold": fold, "role": "external",
                         "label": int(row[label])})
    out = pd.DataFrame(rows)
    check_no_leakage(out)
    return out


def check_no_leakage(splits: pd.DataFrame) -> None:
    """Within a fold each subject has exactly one role; across folds each internal subject is
    tested exactly once."""
    per_fold = splits.groupby(["fold", "subject"]).size()
    if (per_fold > 1).any():
        bad = per_fold[per_fold > 1].index.tolist()[:5]
        raise FoldError(f"subjects with several roles in one fold: {bad}")
    tested = splits[splits["role"] == "test"].groupby("subject").size()
    if (tested != 1).any():
        raise FoldError(f"subjects tested more than once: {tested[tested != 1].index.tolist()[:5]}")


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
