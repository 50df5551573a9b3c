"""oncoflow.train.folds and oncoflow.train.data: patient-level, stratified, seeded folds, and no
slice of a test patient ever reaching the training tensors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers_train import tumor_stack, write_crop
from oncoflow.train.data import build_samples, top_slices
from oncoflow.train.folds import ROLES, FoldError, check_no_leakage, make_folds


def sheet(n_pos: int, n_neg: int, n_external: int = 0, label: str = "y") -> pd.DataFrame:
    rng = np.random.default_rng(n_pos * 100 + n_neg)
    labels = rng.permutation([1] * n_pos + [0] * n_neg).tolist()
    ext = rng.permutation([1, 0] * (n_external // 2) + [1] * (n_external % 2)).tolist()
    return pd.DataFrame({
        "subject": [f"int{i:03d}" for i in range(n_pos + n_neg)] + [f"ext{i:03d}" for i in range(n_external)],
        "cohort": ["siteA"] * (n_pos + n_neg) + ["external"] * n_external,
        label: labels + ext,
    })


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return sheet(n_pos=13, n_neg=24, n_external=7)


@pytest.fixture(scope="module")
def splits(cohort) -> pd.DataFrame:
    return make_folds(cohort, label="y", folds=5, seed=3, val_fraction=0.25)


def test_table_shape(cohort, splits):
    assert list(splits.columns) == ["subject", "fold", "role", "label"]
    assert set(splits["role"]) == set(ROLES)
    assert sorted(splits["fold"].unique()) == list(range(5))
    # every subject (internal and external) appears once per fold
    assert len(splits) == 5 * len(cohort)
    for _, part in splits.groupby("fold"):
        assert sorted(part["subject"]) == sorted(cohort["subject"])
    labels = dict(zip(cohort["subject"], cohort["y"]))
    assert (splits["label"] == splits["subject"].map(labels)).all()


def test_one_role_per_subject_and_fold(splits):
    assert not splits.duplicated(["fold", "subject"]).any()
    for _, part in splits.groupby("fold"):
        groups = {r: set(part.loc[part["role"] == r, "subject"]) for r in ROLES}
        for i, a in enumerate(ROLES):
            for b in ROLES[i + 1:]:
                assert not groups[a] & groups[b], (a, b)
        assert groups["train"] and groups["val"] and groups["test"]


def test_every_internal_subject_tested_exactly_once(cohort, splits):
    internal = set(cohort.loc[cohort["cohort"] != "external", "subject"])
    tested = splits.loc[splits["role"] == "test", "subject"]
    assert tested.is_unique
    assert set(tested) == internal


def test_external_subjects_only_external(cohort, splits):
    external = set(cohort.loc[cohort["cohort"] == "external", "subject"])
    roles = splits[splits["subject"].isin(external)]
    assert len(roles) == 5 * len(external)
    assert (roles["role"] == "external").all()
    assert not (splits.loc[~splits["subject"].isin(external), "role"] == "external").any()


def test_several_external_cohorts():
    s = sheet(n_pos=6, n_neg=6, n_external=4)
    s.loc[s.index[-2:], "cohort"] = "siteC"
    out = make_folds(s, label="y", folds=3, seed=0, val_fraction=0.3, external_cohorts=("external", "siteC"))
    ext = out[out["subject"].str.startswith("ext")]
    assert (ext["role"] == "external").all() and len(ext) == 3 * 4


def test_stratified(cohort, splits):
    internal = cohort[cohort["cohort"] != "external"]
    n, n_pos, folds = len(internal), int(internal["y"].sum()), 5
    for _, part in splits.groupby("fold"):
        test = part[part["role"] == "test"]
        assert abs(test["label"].sum() - n_pos / folds) <= 1
        assert abs(len(test) - n / folds) <= 1
        val = part[part["role"] == "val"]
        assert val["label"].nunique() == 2  # both classes for threshold / early stopping
        fit = part[part["role"].isin(["train", "val"])]
        # the inner split is stratified too: val prevalence within one patient of the fit set's
        assert abs(val["label"].sum() - len(val) * fit["label"].mean()) <= 1


def test_seeded(cohort, splits):
    again = make_folds(cohort, label="y", folds=5, seed=3, val_fraction=0.25)
    pd.testing.assert_frame_equal(splits, again)
    other = make_folds(cohort, label="y", folds=5, seed=4, val_fraction=0.25)
    assert not splits.equals(other)
    key = ["fold", "subject"]
    merged = splits.merge(other, on=key, suffixes=("", "_other"))
    assert (merged["role"] != merged["role_other"]).any()


def test_errors():
    s = sheet(n_pos=6, n_neg=6)
    dup = pd.concat([s, s.iloc[[3]]], ignore_index=True)
    with pytest.raises(FoldError, match="duplicate subjects.*int003"):
        make_folds(dup, label="y", folds=3, seed=0, val_fraction=0.25)
    single = s.assign(y=1)
    with pytest.raises(FoldError, match="single class"):
        make_folds(single, label="y", folds=3, seed=0, val_fraction=0.25)
    # only external subjects of the other class do not help
    one_internal_class = pd.concat([sheet(0, 6), sheet(3, 0, n_external=0).assign(
        subject=lambda d: "x" + d["subject"], cohort="external")], ignore_index=True)
    with pytest.raises(FoldError, match="single class"):
        make_folds(one_internal_class, label="y", folds=3, seed=0, val_fraction=0.25)
    few = sheet(n_pos=2, n_neg=10)
    with pytest.raises(FoldError, match="cv.folds=3 but the smaller class has only 2"):
        make_folds(few, label="y", folds=3, seed=0, val_fraction=0.25)
    make_folds(sheet(n_pos=3, n_neg=10), label="y", folds=3, seed=0, val_fraction=0.5)  # enough


def test_check_no_leakage_rejects_bad_tables(splits):
    twice = splits.copy()
    first_test = twice.index[twice["role"] == "test"][0]
    subject, fold = twice.at[first_test, "subject"], twice.at[first_test, "fold"]
    twice = pd.concat([twice, pd.DataFrame([{"subject": subject, "fold": fold, "role": "train",
                                             "label": twice.at[first_test, "label"]}])])
    with pytest.raises(FoldError, match="several roles"):
        check_no_leakage(twice)
    # tested in two folds: move one subject's test row into another fold's test set
    moved = splits.copy()
    moved = moved[~((moved["subject"] == subject) & (moved["fold"] == (fold + 1) % 5))]
    moved = pd.concat([moved, pd.DataFrame([{"subject": subject, "fold": (fold + 1) % 5,
                                             "role": "test", "label": 0}])])
    with pytest.raises(FoldError, match="tested more than once"):
        check_no_leakage(moved)


# ------------------------------------------------------------------------------ slice-level leakage

ID_SCALE = 1000.0  # voxel value = subject number * ID_SCALE + SLICE0 + slice index + 0.25 * channel
SLICE0 = 100.0  # keeps interpolated values well inside their subject's range


def identifying_crops(root, subjects, modalities=("t1c", "flair"), size=16, depth=7):
    """Crops whose voxels say which subject, slice and modality they come from."""
    rng = np.random.default_rng(0)
    crops, areas = {}, {}
    for n, subject in enumerate(subjects, start=1):
        tumor, _ = tumor_stack(size, depth + n % 3, rng)  # depths differ between subjects
        d = tumor.shape[0]
        images = {m: np.broadcast_to((n * ID_SCALE + SLICE0 + np.arange(d) + 0.25 * c)[:, None, None],
                                     (d, size, size)).copy()
                  for c, m in enumerate(modalities)}
        crops[subject] = write_crop(root / f"{subject}.npz", images, tumor)
        areas[subject] = tumor.sum(axis=(1, 2))
    return crops, areas


def subject_ids(x: np.ndarray) -> set[int]:
    return set(np.floor(x / ID_SCALE).astype(int).ravel().tolist())


@pytest.mark.parametrize("dims", [2, 3])
def test_no_test_slice_in_training_samples(tmp_path, dims):
    cohort = sheet(n_pos=5, n_neg=7, n_external=2)
    number = {s: i for i, s in enumerate(cohort["subject"], start=1)}
    crops, _ = identifying_crops(tmp_path, list(cohort["subject"]))
    folds = make_folds(cohort, label="y", folds=3, seed=1, val_fraction=0.3)
    seen_in_test = set()
    for _, part in folds.groupby("fold"):
        ids = {}
        for role in ROLES:
            subs = part.loc[part["role"] == role, "subject"].tolist()
            samples = build_samples({s: crops[s] for s in subs}, ["t1c", "flair"], dims=dims,
                                    slices=3, depth=4)
            assert samples.subjects == subs
            assert samples.x.dtype == np.float32
            assert samples.x.shape[1] == 2  # one channel per modality
            if dims == 2:
                assert samples.x.shape[2:] == (16, 16)
                assert len(samples.x) == 3 * len(subs)
            else:
                assert samples.x.shape[2:] == (4, 16, 16)
                assert len(samples.x) == len(subs)
            # every row carries its own subject's voxels only, and the channel order is the
            # modality order
            for row, i in enumerate(samples.subject_index):
                assert subject_ids(samples.x[row]) == {number[subs[i]]}
                assert np.allclose(samples.x[row][1] - samples.x[row][0], 0.25, atol=1e-3)
            ids[role] = subject_ids(samples.x)
            assert ids[role] == {number[s] for s in subs}
        assert not ids["test"] & ids["train"]
        assert not ids["test"] & ids["val"]
        assert not ids["val"] & ids["train"]
        assert not ids["external"] & (ids["train"] | ids["val"])
        seen_in_test |= ids["test"]
    internal = cohort.loc[cohort["cohort"] != "external", "subject"]
    assert seen_in_test == {number[s] for s in internal}


def test_2d_samples_are_the_largest_tumor_slices(tmp_path):
    subjects = ["a", "b", "c"]
    crops, areas = identifying_crops(tmp_path, subjects, modalities=("t1c",))
    samples = build_samples(crops, ["t1c"], dims=2, slices=3, depth=4)
    for i, s in enumerate(subjects):
        rows = samples.x[samples.subject_index == i]
        got = sorted(int(round(r[0, 0, 0] - (i + 1) * ID_SCALE - SLICE0)) for r in rows)
        expected = sorted(np.argsort(-areas[s], kind="stable")[:3].tolist())
        assert got == expected
        assert all(areas[s][z] >= np.sort(areas[s])[-3] for z in got)


def test_top_slices():
    assert top_slices(np.array([0, 5, 9, 9, 2, 0]), 3).tolist() == [1, 2, 3]
    assert top_slices(np.array([0, 4, 0, 0]), 3).tolist() == [1]  # fewer tumor slices than k
    assert top_slices(np.array([0, 0, 0]), 2).tolist() == [0]  # no tumor: still one slice


def test_missing_modality(tmp_path):
    crops, _ = identifying_crops(tmp_path, ["a"], modalities=("t1c",))
    with pytest.raises(KeyError, match="flair"):
        build_samples(crops, ["t1c", "flair"], dims=2, slices=2, depth=4)


def test_repeated_cv_is_independent_splits_and_repeat_zero_is_the_single_split(cohort):
    single = make_folds(cohort, label="y", folds=5, seed=3, val_fraction=0.25)
    rep = make_folds(cohort, label="y", folds=5, seed=3, val_fraction=0.25, repeats=3)
    assert "repeat" not in single.columns  # repeats = 1 keeps the table's columns and bytes
    assert sorted(rep["fold"].unique()) == list(range(15))
    assert (rep["repeat"] == rep["fold"] // 5).all()
    first = rep[rep["repeat"] == 0].drop(columns="repeat").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, single)
    tests = {r: part[part["role"] == "test"].sort_values("subject").set_index("subject")["fold"] % 5
             for r, part in rep.groupby("repeat")}
    for _, part in rep.groupby("repeat"):  # each repeat tests every internal patient once
        assert part.loc[part["role"] == "test", "subject"].is_unique
        assert set(part.loc[part["role"] == "test", "subject"]) == set(single.loc[single["role"] == "test", "subject"])
    assert not tests[0].equals(tests[1]) and not tests[1].equals(tests[2])  # its own split
    assert sorted(rep["fold"].unique()) == list(range(15))  # numbered globally: repeat * folds + fold
    assert sorted(single["fold"].unique()) == list(range(5))
