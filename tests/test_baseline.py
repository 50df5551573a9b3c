"""The baseline model (oncoflow.baseline) on real TCGA LGG exams: its features come from each
patient's own images, and its per-fold fit never sees a test patient."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from oncoflow.baseline import baseline_models
from oncoflow.baseline.features import BaselineFeatureError, subject_features
from oncoflow.baseline.model import fit_baseline_fold
from oncoflow.train.folds import make_folds

MODALITIES = ("t1", "flair", "t1ce")
N_SUBJECTS = 30


@pytest.fixture(scope="module")
def lgg_features(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Baseline features of 30 real LGG patients (foreground mask as the 'brain', as backend none
    makes it), with their COCCluster 2 labels."""
    root = shared_data / "lgg_tcga"
    labels = pd.read_csv(root / "data.csv")
    labels = labels.assign(subject=labels.filter(like="Patient").iloc[:, 0]) if "subject" not in labels else labels
    masks = tmp_path_factory.mktemp("masks")
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir())[:N_SUBJECTS]:
        img = nib.load(folder / "flair.nii.gz")
        brain = masks / f"{folder.name}.nii.gz"
        nib.save(nib.Nifti1Image((img.get_fdata() > 0).astype(np.uint8), img.affine), brain)
        rows.append(subject_features(folder.name, {m: folder / f"{m}.nii.gz" for m in MODALITIES}, brain,
                                     folder / "tumor_mask.nii.gz"))
    return pd.concat(rows, ignore_index=True)


def test_features_are_the_patients_own(lgg_features, shared_data):
    assert list(lgg_features.columns) == ["subject", "log_volume_ml",
                                          *[f"{m}_{s}" for m in MODALITIES for s in ("mean", "sd", "p10", "p50", "p90")]]
    assert lgg_features.drop(columns="subject").notna().all().all()
    first = lgg_features.iloc[0]
    mask = nib.load(shared_data / "lgg_tcga" / first["subject"] / "tumor_mask.nii.gz")
    ml = (mask.get_fdata() > 0.5).sum() * np.prod(mask.header.get_zooms()[:3]) / 1000
    assert first["log_volume_ml"] == pytest.approx(np.log(ml))
    # FLAIR-hyperintense tumors: the tumor is brighter than the brain around it
    assert (lgg_features["flair_mean"] > 0).mean() > 0.8


def splits_for(features: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = rng.permutation([1] * 10 + [0] * (len(features) - 10))
    sheet = pd.DataFrame({"subject": features["subject"], "cohort": "internal", "y": y})
    return make_folds(sheet, label="y", folds=3, seed=1, val_fraction=0.3)


def test_baseline_never_sees_a_test_patient(lgg_features):
    splits = splits_for(lgg_features)
    preds, coefs = fit_baseline_fold(lgg_features, splits, fold=0)
    part = splits[splits["fold"] == 0].set_index("subject")
    test = part.index[part["role"] == "test"]
    # perturb every test patient's features and label: the fit and non-test predictions stay
    changed = lgg_features.set_index("subject")
    changed.loc[test] = changed.loc[test] * 3.0 + 1.0
    changed_splits = splits.copy()
    hit = (changed_splits["fold"] == 0) & changed_splits["subject"].isin(test)
    changed_splits.loc[hit, "label"] = 1 - changed_splits.loc[hit, "label"]
    preds2, coefs2 = fit_baseline_fold(changed.reset_index(), changed_splits, fold=0)
    pd.testing.assert_frame_equal(coefs, coefs2)
    keep = preds["role"] != "test"
    np.testing.assert_allclose(preds.loc[keep, "probability"], preds2.loc[keep, "probability"])
    assert not np.allclose(preds.loc[~keep, "probability"], preds2.loc[~keep, "probability"])
    assert set(preds["role"]) == {"train", "val", "test"} and (preds["model"] == "baseline").all()
    assert coefs["n_train"].iloc[0] == int((part["role"] == "train").sum())


def test_baseline_switch_and_masks():
    sheet = pd.DataFrame({"subject": ["a", "b"], "tumor_mask": ["a.nii.gz", "b.nii.gz"]})
    assert baseline_models({}, sheet) == ["baseline"]
    assert baseline_models({"baseline": {"activate": False}}, sheet) == []
    assert baseline_models({}, sheet.assign(tumor_mask=["a.nii.gz", ""])) == []


def test_empty_tumor_mask_is_an_error_naming_the_subject(tmp_path):
    affine = np.eye(4)
    for name, data in (("t1", np.random.default_rng(0).random((8, 8, 4))), ("brain", np.ones((8, 8, 4))),
                       ("tumor", np.zeros((8, 8, 4)))):
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), tmp_path / f"{name}.nii.gz")
    with pytest.raises(BaselineFeatureError, match="subjX.*empty"):
        subject_features("subjX", {"t1": tmp_path / "t1.nii.gz"}, tmp_path / "brain.nii.gz", tmp_path / "tumor.nii.gz")
