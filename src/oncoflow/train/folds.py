"""Patient-level, stratified, seeded cross-validation folds with an inner validation split.

One row per (subject, fold) with role train / val / test / external, written to a TSV a reviewer can
audit. External-cohort subjects are never train or val in any fold.

Repeated cross-validation (``cv.repeats`` R > 1): repeat r is a complete, independent k-fold split
with its own seed (``seed + REPEAT_SEED_STEP * r``; repeat 0 is exactly the single split). Folds
are numbered globally, fold = r * k + (fold within the repeat), so every fold's model, pretraining
and fusion keep the ``fold<k>`` layout and their seeds (``seed + fold``) differ between repeats.
The splits table gains a ``repeat`` column only when R > 1.
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

ROLES = ("train", "val", "test", "external")
# The patients of a fold whose images (never labels) label-free pretraining may use.
PRETRAIN_ROLES = ("train", "val")
#: Seed offset between repeats of the cross-validation (repeat 0 uses cv.seed itself).
REPEAT_SEED_STEP = 1000


class FoldError(ValueError):
    pass


def make_folds(
    samples: pd.DataFrame, *, label: str, folds: int, seed: int, val_fraction: float,
    external_cohorts: tuple[str, ...] = ("external",), repeats: int = 1,
) -> pd.DataFrame:
    """Assign roles per fold. ``samples`` has one row per subject with columns subject, cohort and
    the binary ``label`` column (0/1). ``repeats`` > 1: that many independent splits, folds
    numbered globally (module docstring)."""
    if repeats < 1:
        raise FoldError(f"cv.repeats must be at least 1, got {repeats}")
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
    for repeat in range(repeats):
        base = seed + REPEAT_SEED_STEP * repeat
        outer = StratifiedKFold(n_splits=folds, shuffle=True, random_state=base)
        for inner, (train_idx, test_idx) in enumerate(outer.split(internal, y)):
            fold = repeat * folds + inner
            train_sub = internal.iloc[train_idx]
            fit_idx, val_idx = train_test_split(
                train_sub.index.to_numpy(), test_size=val_fraction, stratify=train_sub[label],
                random_state=base + inner,
            )
            for role, idx in (("train", fit_idx), ("val", val_idx), ("test", test_idx)):
                for i in sorted(idx):
                    rows.append({"subject": internal.at[i, "subject"], "fold": fold, "role": role,
                                 "label": int(internal.at[i, label]), "repeat": repeat})
            for _, row in samples[is_external].iterrows():
                rows.append({"subject": row["subject"], "fold": fold, "role": "external",
                             "label": int(row[label]), "repeat": repeat})
    out = pd.DataFrame(rows)
    if repeats == 1:
        out = out.drop(columns="repeat")  # the single-split table keeps its columns and bytes
    check_no_leakage(out)
    return out


def fold_numbers(cv: dict) -> list[int]:
    """Every (global) fold of the config's ``cv`` section: folds x repeats."""
    return list(range(int(cv["folds"]) * int(cv.get("repeats", 1))))


def repeat_of(fold: int, folds: int) -> int:
    """The repeat a global fold number belongs to."""
    return int(fold) // int(folds)


def check_no_leakage(splits: pd.DataFrame) -> None:
    """Within a fold each subject has exactly one role; across folds each internal subject is
    tested exactly once."""
    per_fold = splits.groupby(["fold", "subject"]).size()
    if (per_fold > 1).any():
        bad = per_fold[per_fold > 1].index.tolist()[:5]
        raise FoldError(f"subjects with several roles in one fold: {bad}")
    by = ["repeat", "subject"] if "repeat" in splits.columns else ["subject"]
    tested = splits[splits["role"] == "test"].groupby(by).size()
    if (tested != 1).any():
        raise FoldError(f"subjects tested more than once in a repeat: {tested[tested != 1].index.tolist()[:5]}")


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
