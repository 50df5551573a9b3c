"""oncoflow.fusion.late.fuse: the mean is a mean, and the stacking models (lr, svm) are fitted on
the fold's inner-validation patients only: a test or external patient's label (or score) never
changes the fitted model. The SVM's probabilities come from Platt scaling, cross-validated when the
validation set allows it, and work on validation sets of two patients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oncoflow.fusion.late import PLATT_MIN_PER_CLASS, FusionError, fuse
from oncoflow.metrics import auc

# No deprecated scikit-learn API (SVC(probability=True) is deprecated from 1.9): warnings fail.
pytestmark = pytest.mark.filterwarnings("error::FutureWarning", "error::DeprecationWarning")

MODELS = ("t1c_resnet18", "flair_resnet18", "t2_resnet18")
ROLE_COUNTS = {"train": 14, "val": 16, "test": 10, "external": 8}


def fold_frames(seed: int = 0, fold: int = 2) -> list[pd.DataFrame]:
    """One predictions frame per model, as train_fold writes them, for one fold; the models are
    informative to different degrees so the stacking weights differ from the mean's."""
    rng = np.random.default_rng(seed)
    roles = [r for r, n in ROLE_COUNTS.items() for _ in range(n)]
    n = len(roles)
    y = rng.integers(0, 2, n)
    y[[14, 15]] = [0, 1]  # both classes among the val rows
    subjects = [f"sub{i:03d}" for i in rng.permutation(n)]
    frames = []
    for strength, model in zip((2.0, 1.0, 0.2), MODELS):
        score = strength * (y - 0.5) + rng.normal(0, 1, n)
        frames.append(pd.DataFrame({"subject": subjects, "fold": fold, "model": model, "role": roles,
                                    "y_true": y, "probability": 1 / (1 + np.exp(-score))}))
    return frames


def edit(frames: list[pd.DataFrame], rows: pd.Series, **changes) -> list[pd.DataFrame]:
    """The same edit in every model's frame (callables get the frame)."""
    out = []
    for f in frames:
        f = f.copy()
        mask = f["subject"].isin(rows)
        for col, value in changes.items():
            f.loc[mask, col] = value(f[mask]) if callable(value) else value
        out.append(f)
    return out


def by_subject(fused: pd.DataFrame) -> pd.Series:
    return fused.set_index("subject")["probability"]


def test_output_format():
    frames = fold_frames()
    for method in ("mean", "lr", "svm"):
        fused = fuse(frames, method)
        assert list(fused.columns) == ["subject", "fold", "model", "role", "y_true", "probability"]
        assert (fused["model"] == f"fusion_{method}").all()
        assert len(fused) == len(frames[0])
        ref = frames[0].set_index("subject")
        assert (fused.set_index("subject")["role"] == ref.loc[fused["subject"], "role"].to_numpy()).all()
        assert (fused.set_index("subject")["y_true"] == ref.loc[fused["subject"], "y_true"].to_numpy()).all()
        assert fused["probability"].between(0, 1).all()
        assert (fused["fold"] == 2).all()
    with pytest.raises(FusionError, match="unknown fusion method"):
        fuse(frames, "max")


def test_mean_is_the_average():
    frames = fold_frames()
    fused = by_subject(fuse(frames, "mean"))
    expected = pd.concat([f.set_index("subject")["probability"] for f in frames], axis=1).mean(axis=1)
    np.testing.assert_allclose(fused.loc[expected.index], expected, rtol=0, atol=1e-15)


def test_single_model_mean_is_identity():
    frames = fold_frames()[:1]
    fused = by_subject(fuse(frames, "mean"))
    ref = frames[0].set_index("subject")["probability"]
    np.testing.assert_array_equal(fused.loc[ref.index], ref)


@pytest.mark.parametrize("method,tiny", [("lr", False), ("svm", False), ("svm", True)])
def test_stacking_never_sees_test_labels(method, tiny):
    # tiny: 2 + 3 validation patients, so the SVM's Platt sigmoid is fitted in-sample
    frames = small_val(fold_frames(), 2, 3) if tiny else fold_frames()
    roles = frames[0].set_index("subject")["role"]
    held_out = roles.index[roles.isin(["test", "external"])].to_series()
    val = roles.index[roles == "val"]
    base = by_subject(fuse(frames, method, seed=0))

    # 1. flip every test / external label: nothing changes, not even those rows' probabilities
    flipped = edit(frames, held_out, y_true=lambda f: 1 - f["y_true"])
    out = by_subject(fuse(flipped, method, seed=0))
    pd.testing.assert_series_equal(out.loc[base.index], base)

    # 2. also make the held-out scores perfectly predict the (flipped) labels: a model that was
    #    fitted on them would change; val rows stay identical
    rng = np.random.default_rng(5)
    leaky = edit(flipped, held_out, probability=lambda f: np.where(f["y_true"] == 1, 0.99, 0.01)
                 * rng.uniform(0.9, 1.0, len(f)))
    out = by_subject(fuse(leaky, method, seed=0))
    pd.testing.assert_series_equal(out.loc[val], base.loc[val])
    train = roles.index[roles == "train"]
    pd.testing.assert_series_equal(out.loc[train], base.loc[train])

    # 3. a held-out row's fused probability depends only on its own inputs: changing one test
    #    patient's scores moves that patient only, and swapping two patients' scores swaps outputs
    one, two = held_out.iloc[0], held_out.iloc[1]
    moved = edit(frames, pd.Series([one]), probability=0.5)
    out = by_subject(fuse(moved, method, seed=0))
    assert out.loc[one] != base.loc[one]
    pd.testing.assert_series_equal(out.drop(one), base.drop(one))
    swapped = []
    for f in frames:
        f = f.copy().set_index("subject")
        f.loc[[one, two], "probability"] = f.loc[[two, one], "probability"].to_numpy()
        swapped.append(f.reset_index())
    out = by_subject(fuse(swapped, method, seed=0))
    assert out.loc[one] == pytest.approx(base.loc[two], abs=1e-12)
    assert out.loc[two] == pytest.approx(base.loc[one], abs=1e-12)

    # 4. the check has teeth: flipping a single validation label does change the model
    changed = edit(frames, pd.Series(val[:3]), y_true=lambda f: 1 - f["y_true"])
    out = by_subject(fuse(changed, method, seed=0))
    assert not np.allclose(out.loc[held_out], base.loc[held_out])


def test_mismatched_subjects_raise():
    frames = fold_frames()
    renamed = frames[1].copy()
    renamed.loc[renamed.index[0], "subject"] = "someone_else"
    for method in ("mean", "lr"):
        with pytest.raises(FusionError, match="disagree"):
            fuse([frames[0], renamed, frames[2]], method)
    missing = frames[2].iloc[1:]
    with pytest.raises(FusionError, match="disagree"):
        fuse([frames[0], frames[1], missing], "mean")
    relabelled = frames[1].copy()
    relabelled.loc[relabelled.index[0], "y_true"] = 1 - relabelled.loc[relabelled.index[0], "y_true"]
    with pytest.raises(FusionError, match="disagree"):
        fuse([frames[0], relabelled], "mean")
    other_role = frames[1].copy()
    i = other_role.index[other_role["role"] == "test"][0]
    other_role.loc[i, "role"] = "val"
    with pytest.raises(FusionError, match="disagree"):
        fuse([frames[0], other_role], "lr")


@pytest.mark.parametrize("method", ["lr", "svm"])
def test_single_class_validation_raises(method):
    frames = fold_frames()
    val = frames[0].loc[frames[0]["role"] == "val", "subject"]
    one_class = edit(frames, val, y_true=1)
    with pytest.raises(FusionError, match=rf"fusion_{method}: the inner-validation patients of fold 2 hold a "
                                          r"single class; raise cv.val_fraction"):
        fuse(one_class, method)
    fuse(one_class, "mean")  # the mean fits nothing and still works


def small_val(frames: list[pd.DataFrame], n_pos: int, n_neg: int) -> list[pd.DataFrame]:
    """Keep n_pos positive and n_neg negative validation patients; the other val rows become
    training rows (which the stacking model never reads)."""
    ref = frames[0]
    val = ref[ref["role"] == "val"]
    keep = pd.concat([val[val["y_true"] == 1].head(n_pos), val[val["y_true"] == 0].head(n_neg)])
    assert len(keep) == n_pos + n_neg
    drop = val.loc[~val.index.isin(keep.index), "subject"]
    return edit(frames, drop, role="train")


def test_svm_platt_is_cross_validated_when_the_validation_set_allows():
    frames = fold_frames()
    n_val = (frames[0]["role"] == "val").sum()
    fused = fuse(frames, "svm", seed=0)
    assert "cross-validated" in fused.attrs["note"] and f"{n_val} validation patients" in fused.attrs["note"]
    # seeded: the same seed gives the same probabilities
    pd.testing.assert_frame_equal(fuse(frames, "svm", seed=0), fused)
    # informative inputs -> fused probabilities rank the test patients the right way round
    test = fused[fused["role"] != "train"]
    assert auc(test["y_true"], test["probability"]) > 0.75
    assert fused["probability"].between(0, 1).all() and fused["probability"].nunique() > 10


@pytest.mark.parametrize("n_pos,n_neg", [(1, 1), (1, 4), (PLATT_MIN_PER_CLASS - 1, PLATT_MIN_PER_CLASS + 2)])
def test_svm_works_on_tiny_validation_sets(n_pos, n_neg):
    frames = small_val(fold_frames(), n_pos, n_neg)
    fused = fuse(frames, "svm", seed=0)
    assert "in-sample" in fused.attrs["note"], fused.attrs["note"]
    p = fused["probability"]
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()  # Platt's smoothed targets: no 0 / 1
    assert p.nunique() > 1


def test_svm_cross_validation_starts_at_the_documented_class_count():
    frames = small_val(fold_frames(), PLATT_MIN_PER_CLASS, PLATT_MIN_PER_CLASS)
    fused = fuse(frames, "svm", seed=0)
    assert f"{PLATT_MIN_PER_CLASS}-fold cross-validated" in fused.attrs["note"]


def test_every_method_says_how_it_was_fitted():
    frames = fold_frames()
    assert fuse(frames, "mean").attrs["note"].startswith("fusion_mean fold 2: mean of 3 models")
    assert "logistic regression on 16 validation patients" in fuse(frames, "lr").attrs["note"]


def test_missing_probability_or_validation_set_raises():
    frames = fold_frames()
    broken = [frames[0], frames[1].copy(), frames[2]]
    broken[1].loc[broken[1].index[3], "probability"] = np.nan
    with pytest.raises(FusionError, match=r"flair_resnet18: probability is missing or not finite"):
        fuse(broken, "mean")
    no_val = edit(frames, frames[0].loc[frames[0]["role"] == "val", "subject"], role="train")
    with pytest.raises(FusionError, match="fold 2 has no inner-validation patients"):
        fuse(no_val, "svm")
    with pytest.raises(FusionError, match="no model predictions"):
        fuse([], "mean")
