"""Cross-fitting of segmenters: fold k's segmenter trains on fold k's training and inner-validation
patients that have a manual mask, and predicts only patients that are test or external in fold k.
A patient's predicted mask (the one its crop may use) comes from the first fold in which it is
tested: exactly one fold for an internal patient of a single split (the first repeat's with
``cv.repeats`` > 1), the first fold for an external patient (every fold's segmenter is blind to it).
"""

from __future__ import annotations

import pandas as pd

from oncoflow.train.folds import PRETRAIN_ROLES, FoldError

#: roles a fold's segmenter may predict (never a patient it trained on)
PREDICT_ROLES = ("test", "external")


def segmenter_subjects(splits: pd.DataFrame, fold: int, with_mask: set[str]) -> list[str]:
    """The fold's train + val patients with a manual mask, in table order."""
    part = splits[splits["fold"] == fold]
    if part.empty:
        raise FoldError(f"no fold {fold} in the splits table (folds {sorted(splits['fold'].unique())})")
    return [s for s in part.loc[part["role"].isin(PRETRAIN_ROLES), "subject"] if s in with_mask]


def predicted_subjects(splits: pd.DataFrame, fold: int) -> list[str]:
    """The patients fold ``fold``'s segmenter predicts (its test and external patients)."""
    part = splits[splits["fold"] == fold]
    return part.loc[part["role"].isin(PREDICT_ROLES), "subject"].tolist()


def prediction_folds(splits: pd.DataFrame) -> dict[str, int]:
    """subject -> the fold whose segmenter makes its predicted mask (first fold testing it)."""
    rows = splits[splits["role"].isin(PREDICT_ROLES)].sort_values("fold", kind="stable")
    return rows.groupby("subject", sort=False)["fold"].first().astype(int).to_dict()


def check_segmenter_inputs(subjects: list[str], splits: pd.DataFrame, fold: int) -> None:
    """A segmenter job's subjects must all be the fold's train / val patients."""
    roles = splits[splits["fold"] == fold].set_index("subject")["role"]
    for s in subjects:
        role = roles.get(s, "not in the splits table")
        if role not in PRETRAIN_ROLES:
            raise FoldError(f"segmenter for fold {fold} was given subject {s!r} (role: {role}); it may only "
                            f"train on the fold's {' and '.join(PRETRAIN_ROLES)} patients")


def check_predicted_subject(subject: str, splits: pd.DataFrame, fold: int) -> None:
    """A fold's segmenter predicts only a patient it never trained on (test or external there)."""
    roles = splits[splits["fold"] == fold].set_index("subject")["role"]
    role = roles.get(subject, "not in the splits table")
    if role not in PREDICT_ROLES:
        raise FoldError(f"subject {subject!r} is a {role} patient of fold {fold}: that fold's segmenter "
                        f"may only predict its {' and '.join(PREDICT_ROLES)} patients")


def predicted_crop_subjects(crop_mask: str, samples: pd.DataFrame) -> list[str]:
    """The study's subjects whose crop (and so every score of theirs) came from their cross-fitted
    predicted mask under segment.crop_mask; ``samples`` has subject and tumor_mask ('' = none)."""
    if crop_mask == "predicted":
        return samples["subject"].astype(str).tolist()
    if crop_mask == "predicted_where_missing":
        masks = samples["tumor_mask"] if "tumor_mask" in samples else pd.Series("", index=samples.index)
        return samples.loc[masks.fillna("").astype(str) == "", "subject"].astype(str).tolist()
    return []


def predicted_crop_sentence(subjects: list[str], total: int) -> str:
    """One sentence naming the patients scored from a predicted mask ('' when none was)."""
    if not subjects:
        return ""
    who = f" ({', '.join(subjects)})" if len(subjects) <= 10 else ""
    return (f"{len(subjects)} of {total} patients{who} were cropped, and so scored, from their cross-fitted "
            "predicted tumor mask rather than a manual one.")


def feature_mask_source(feature_mask: str, predicted: list[str], total: int) -> str:
    """Which masks the baseline's and the IBSI radiomics' features were computed from, the words
    after "computed from" (methods.md, CLEAR item 19); ``predicted``: the patients whose features
    read their cross-fitted predicted mask (StudyPlan.predicted_feature_subjects), of ``total``."""
    if feature_mask == "manual":
        return "the manual masks, not from the predicted ones"
    who = f" ({', '.join(predicted)})" if predicted and len(predicted) <= 10 else ""
    crossfit = "each made by the segmenter of the fold in which that patient was tested, never by one trained on it"
    if feature_mask == "predicted":
        share = (f" of all {total} patients" if len(predicted) == total
                 else f" of {len(predicted)} of {total} patients{who}" if predicted else "")
        return f"the cross-fitted predicted masks{share} ({crossfit})"
    if not predicted:
        return f"the manual masks (all {total} patients had one; predicted masks only replace missing ones)"
    return (f"the manual masks for {total - len(predicted)} of {total} patients and from the cross-fitted predicted "
            f"masks for the {len(predicted)} without one{who} ({crossfit})")
