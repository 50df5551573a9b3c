"""How a fold model's epoch is chosen (oncoflow.train.loop): the validation loss that keeps
measuring after the AUC saturates, the AUC rule's tie-break, the small-validation-set warning, and
nested selection (inner CV chooses the epoch, the inner models or one refitted model score the test
patients, inner out-of-fold scores written for the non-test patients) on tiny synthetic crops (CPU,
one thread)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers_train import synthetic_cohort
from oncoflow.models.ensemble import InnerEnsemble, network_from_checkpoint
from oncoflow.train.data import build_samples
from oncoflow.train.folds import make_folds
from oncoflow.train.loop import HISTORY_COLUMNS, TrainConfig, predict_patients, train_fold
from oncoflow.train.selection import better, selection_warning, validation_loss

torch.set_num_threads(1)


def test_validation_loss_keeps_ranking_after_auc_saturates():
    y = np.array([0, 0, 1, 1])
    unsure, sure = np.array([0.45, 0.48, 0.52, 0.55]), np.array([0.1, 0.2, 0.8, 0.9])
    # both separate the patients (AUC 1), only the loss tells the sharper one apart
    assert validation_loss(y, sure, False) < validation_loss(y, unsure, False)
    # class-balanced: each class weighs half, whatever its size
    y3, p3 = np.array([0, 0, 0, 1]), np.array([0.1, 0.1, 0.1, 0.4])
    assert validation_loss(y3, p3, True) == pytest.approx(0.5 * (-np.log(0.9) - np.log(0.4)))
    assert validation_loss(y3, p3, False) == pytest.approx((3 * -np.log(0.9) - np.log(0.4)) / 4)


def test_auc_rule_breaks_ties_by_loss_and_loss_rule_ignores_auc():
    first = {"val_auc": 1.0, "val_loss": 0.60}
    later = {"val_auc": 1.0, "val_loss": 0.30}
    worse_auc = {"val_auc": 0.9, "val_loss": 0.10}
    assert better(later, first, "val_auc") and not better(first, later, "val_auc")
    assert not better(worse_auc, later, "val_auc")
    assert better(worse_auc, later, "val_loss")
    assert better({"val_auc": np.nan, "val_loss": 0.2}, later, "val_auc")  # single-class: loss decides


def test_small_validation_set_is_named():
    assert "3 of the smaller class" in selection_warning(np.array([0] * 9 + [1] * 3), "m fold 0")
    assert selection_warning(np.array([0] * 10 + [1] * 10), "m fold 0") == ""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("selection")
    sheet, crops = synthetic_cohort(root / "crops", [0, 1] * 9, seed=3, size=24, depth=4)
    splits = make_folds(sheet, label="label", folds=3, seed=0, val_fraction=0.25)
    return root, crops, splits


def _nested(cohort, nested_model: str):
    root, crops, splits = cohort
    cfg = TrainConfig(architecture="resnet18", modalities=["t1c"], epochs=3, batch_size=8, slices=2, depth=4,
                      patience=0, seed=0, device="cpu", selection="nested", inner_folds=2, nested_model=nested_model)
    out = root / nested_model
    preds = train_fold(cfg, crops, splits, out_dir=out, model_name="m", fold=0)
    history = pd.read_csv(out / "history.tsv", sep="\t")
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert len(history) == 3 and history["val_loss"].notna().all()
    # the kept epoch is the one of lowest pooled inner out-of-fold loss, and the checkpoint says so
    chosen = int(history["val_loss"].idxmin())
    assert history["selected"].tolist() == [e == chosen for e in range(3)]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == chosen and ckpt["selection"] == "nested" and ckpt["nested_model"] == nested_model
    # every non-test patient is scored out of fold (role val), the test patients by the fold model
    fold = splits[splits["fold"] == 0].set_index("subject")
    test = fold.index[fold["role"] == "test"].tolist()
    pool = fold.index[fold["role"] != "test"].tolist()
    assert set(preds.loc[preds["role"] == "val", "subject"]) == set(pool)
    assert set(preds.loc[preds["role"] == "test", "subject"]) == set(test)
    model = network_from_checkpoint(ckpt, "checkpoint.pt")
    got = preds.set_index("subject")["probability"]
    cpu = torch.device("cpu")
    samples = build_samples({s: crops[s] for s in test}, ["t1c"], dims=2, slices=2, depth=4)
    scored = dict(zip(samples.subjects, predict_patients(model, samples, cpu, 8)))
    np.testing.assert_allclose([got[s] for s in test], [scored[s] for s in test], atol=1e-5)
    samples = build_samples({s: crops[s] for s in pool}, ["t1c"], dims=2, slices=2, depth=4)
    oof = np.array([got[s] for s in samples.subjects])
    return ckpt, model, samples, oof, cpu


@pytest.fixture(scope="module")
def ensemble_run(cohort):
    return _nested(cohort, "ensemble")


def test_nested_selection_scores_test_patients_with_the_inner_models(ensemble_run):
    ckpt, model, samples, oof, cpu = ensemble_run
    assert ckpt["ensemble"] == 2 and isinstance(model, InnerEnsemble) and len(model.members) == 2
    # the members are the inner models as they were at the kept epoch: each non-test patient's
    # out-of-fold score is exactly one member's score of it (the member that held it out)
    each = np.stack([predict_patients(m, samples, cpu, 8) for m in model.members])
    matches = np.isclose(each, oof, atol=1e-5)
    assert (matches.sum(0) == 1).all() and matches.sum(1).min() >= 4
    # and the fold model's logit is the mean of theirs
    x = torch.from_numpy(samples.x[:4])
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.stack([m(x) for m in model.members]).mean(0))


def test_an_inner_ensemble_is_explained_as_a_whole(cohort, ensemble_run):
    from oncoflow.explain.sanity import explain_fold, load_fold_model

    root, crops, splits = cohort
    fold_model = load_fold_model(root / "ensemble" / "checkpoint.pt")
    assert isinstance(fold_model.model, InnerEnsemble)
    test = splits.loc[(splits["fold"] == 0) & (splits["role"] == "test"), "subject"].tolist()[:2]
    table, maps, _ = explain_fold(fold_model, {s: crops[s] for s in test}, {"slices": 2, "depth": 4},
                                  model_name="m", fold=0, seed=1, methods=("gradcam", "occlusion"))
    # Grad-CAM is the mean of the members' maps on the same layer; the random model is an ensemble too
    from oncoflow.explain.maps import gradcam
    from oncoflow.explain.sanity import model_samples

    x = model_samples(fold_model, {s: crops[s] for s in test}, {"slices": 2, "depth": 4}).x
    layer = table.loc[table["method"] == "gradcam", "layer"].iloc[0].split(" ")[0]
    each = [gradcam(m, layer, x) for m in fold_model.model.members]
    np.testing.assert_allclose(maps["gradcam"], np.mean(each, axis=0), rtol=1e-5, atol=1e-6)
    # occlusion runs on the ensemble's mean logit; its random counterpart is an ensemble too
    occlusion = table[table["method"] == "occlusion"]
    assert len(occlusion) == 2 and occlusion["random_spearman"].notna().all()


def test_nested_selection_refit_writes_out_of_fold_scores(cohort):
    ckpt, model, samples, oof, cpu = _nested(cohort, "refit")
    assert "ensemble" not in ckpt and not isinstance(model, InnerEnsemble)
    # the out-of-fold scores are not the refitted model's scores of patients it trained on
    assert not np.allclose(oof, predict_patients(model, samples, cpu, 8), atol=1e-3)


def test_selection_table_states_the_kept_epochs_and_whether_the_set_could_choose(tmp_path):
    from oncoflow.report.selection import read_selection, selection_table, selection_text

    sheet = pd.DataFrame({"subject": [f"s{i:02d}" for i in range(20)], "cohort": "internal", "label": [0, 1] * 10})
    splits = make_folds(sheet, label="label", folds=2, seed=0, val_fraction=0.25)
    histories = {}
    for fold, (kept, aucs) in enumerate([(2, [0.8, 1.0, 1.0]), (0, [1.0, 1.0, 0.9])]):
        path = tmp_path / f"h{fold}.tsv"
        pd.DataFrame({"epoch": range(3), "val_loss": [0.6, 0.5, 0.4] if fold == 0 else [0.3, 0.5, 0.6],
                      "val_auc": aucs, "selected": [e == kept for e in range(3)]}).to_csv(path, sep="\t", index=False)
        histories[("t1_resnet18", fold)] = path
    table = selection_table(histories, splits, {"selection": "inner_val", "select_on": "val_loss"},
                            {"t1_resnet18": 10})
    assert table["chosen_epoch"].tolist() == [3, 1] and table["epochs_run"].tolist() == [3, 3]
    val = splits[(splits["fold"] == 0) & (splits["role"] == "val")]
    assert table["n_val"].iloc[0] == len(val) and table["too_small"].all() and table["auc_saturated"].all()
    text = selection_text(table)
    table.to_csv(tmp_path / "selection.tsv", sep="\t", index=False)  # as methods reads it: empty nested_model is NaN
    assert selection_text(read_selection(tmp_path / "selection.tsv")) == text
    assert "t1_resnet18: epochs 3, 1 (of up to 10)" in text and "lowest validation loss" in text
    assert "too few to choose an epoch reliably" in text and "1.000 at the kept epoch in 2 of 2" in text
    # nested: the patients that chose are every non-test patient of the fold
    nested = selection_table(histories, splits, {"selection": "nested", "select_on": "val_loss"}, {"t1_resnet18": 10})
    assert nested["n_val"].iloc[0] == int(((splits["fold"] == 0) & (splits["role"] != "test")).sum())
    assert "nested selection; the fold's inner models at that epoch" in selection_text(nested)
    refit = selection_table(histories, splits, {"selection": "nested", "select_on": "val_loss", "nested_model": "refit"},
                            {"t1_resnet18": 10})
    assert "one model refitted on all of them" in selection_text(refit)
    # a table made before train.nested_model (no column) was a refit
    assert "one model refitted" in selection_text(nested.drop(columns="nested_model"))


def test_a_patient_without_a_crop_neither_trains_nor_is_scored(cohort, tmp_path, capsys):
    """A cross-fitted predicted mask judged implausible leaves a crop file that only says why
    (rule crop_tumor): train_fold leaves that patient out, names it, and scores every other one;
    loading it as a crop is refused with the reason, never read as an image."""
    from oncoflow.crop.tumor_crop import write_not_cropped
    from oncoflow.train.data import load_crop

    root, crops, splits = cohort
    fold = splits[splits["fold"] == 0].set_index("subject")
    gone = [fold.index[fold["role"] == "test"][0], fold.index[fold["role"] == "train"][0]]
    crops = dict(crops)
    for s in gone:
        crops[s] = tmp_path / f"{s}.npz"
        write_not_cropped(crops[s], f"not cropped: predicted tumor mask empty ({s})")
    cfg = TrainConfig(architecture="resnet18", modalities=["t1c"], epochs=1, batch_size=8, slices=2, depth=4,
                      patience=0, seed=0, device="cpu")
    preds = train_fold(cfg, crops, splits, out_dir=tmp_path / "m", model_name="m", fold=0)
    assert set(preds["subject"]) == set(fold.index) - set(gone)
    err = capsys.readouterr().err
    assert all(f"{s} (" in err and f"left out: not cropped: predicted tumor mask empty ({s})" in err for s in gone)
    with pytest.raises(ValueError, match="predicted tumor mask empty"):
        load_crop(crops[gone[0]], ["t1c"])
