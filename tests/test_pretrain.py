"""In-domain, label-free pretraining (oncoflow.train.pretrain) and loading its backbone
(models[].init: pretrained): it reads only the fold's train + val patients, it learns its pretext
task, and its backbone tensors really arrive in the classifier, whose head starts fresh."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers_train import synthetic_cohort, write_crop
from oncoflow.models.zoo import build_model, classifier_head, load_backbone
from oncoflow.train.folds import FoldError, check_pretrain_inputs, make_folds, pretrain_subjects
from oncoflow.train.loop import TrainConfig, seed_everything, train_fold
from oncoflow.train.pretrain import HISTORY_COLUMNS, PretrainConfig, pretrain_cohort, pretrain_fold, rotate_batch

torch.set_num_threads(1)

FOLD = 1


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """18 internal subjects and 2 external ones; splits in 3 folds."""
    root = tmp_path_factory.mktemp("pretrain")
    labels = [0, 1] * 10
    sheet, crops = synthetic_cohort(root / "crops", labels, seed=4, size=32, depth=6,
                                    cohorts=["internal"] * 18 + ["external"] * 2)
    splits = make_folds(sheet, label="label", folds=3, seed=0, val_fraction=0.3)
    return root, crops, splits


def guarded(crops, splits, fold):
    """The crops, with every subject that pretraining must not see pointing at a file that does not
    exist: touching one of them fails the run."""
    part = splits[splits["fold"] == fold].set_index("subject")
    forbidden = part.index[~part["role"].isin(["train", "val"])]
    assert set(part.loc[forbidden, "role"]) == {"test", "external"}
    return {s: (p.parent / "never" / p.name if s in forbidden else p) for s, p in crops.items()}, forbidden


@pytest.fixture(scope="module")
def pretrained(cohort):
    """Fold 1 pretrained three ways; test and external crops made unreadable."""
    root, crops, splits = cohort
    safe, forbidden = guarded(crops, splits, FOLD)
    out = {}
    for task, arch, epochs in (("segmentation", "resnet18", 4), ("tumor_slice", "resnet18", 2),
                               ("segmentation", "resnet10_3d", 3), ("rotation", "resnet18", 1)):
        cfg = PretrainConfig(task=task, architecture=arch, modalities=["t1c"], epochs=epochs,
                             batch_size=16, depth=8, seed=0, device="cpu")
        history = pretrain_fold(cfg, safe, splits, fold=FOLD, out_dir=root / task / arch, name="p")
        out[(task, arch)] = (root / task / arch / "checkpoint.pt", history)
    return out, forbidden


def test_only_train_and_val_patients_reach_pretraining(cohort, pretrained):
    root, crops, splits = cohort
    runs, forbidden = pretrained
    part = splits[splits["fold"] == FOLD]
    fit = set(part.loc[part["role"].isin(["train", "val"]), "subject"])
    assert len(forbidden) == 6 + 2  # the fold's test patients and the external cohort
    for path, _ in runs.values():
        ckpt = torch.load(path, weights_only=True)
        assert set(ckpt["subjects"]) == fit
        assert not set(ckpt["subjects"]) & set(forbidden)
        assert ckpt["fold"] == FOLD
    assert pretrain_subjects(splits, FOLD) == part.loc[part["role"].isin(["train", "val"]), "subject"].tolist()


def test_pretext_tasks_learn(pretrained):
    """(rotation learns on anatomy-like crops: test_rotation_pretext_learns; these crops' round
    tumors in noise look the same turned.)"""
    runs, _ = pretrained
    for (task, arch), (path, history) in runs.items():
        if task == "rotation":
            continue
        assert list(history.columns) == list(HISTORY_COLUMNS)
        on_disk = pd.read_csv(path.parent / "history.tsv", sep="\t")
        pd.testing.assert_frame_equal(on_disk, history, check_dtype=False)
        assert history["data_wait_share"].between(0, 1).all() and (history["samples_per_s"] > 0).all()
        first, last = history.iloc[0], history.iloc[-1]
        print(f"\n{task} {arch}: loss {first.loss:.3f} -> {last.loss:.3f}, "
              f"score {first.score:.3f} -> {last.score:.3f}")
        assert last.loss < 0.7 * first.loss, (task, arch)
        assert last.score > first.score, (task, arch)
        ckpt = torch.load(path, weights_only=True)
        assert (ckpt["task"], ckpt["architecture"], ckpt["modalities"]) == (task, arch, ["t1c"])


@pytest.mark.parametrize("task,arch,segmentation", [("segmentation", "resnet18", False),
                                                    ("segmentation", "resnet18", True),
                                                    ("tumor_slice", "resnet18", False),
                                                    ("rotation", "resnet18", False),
                                                    ("segmentation", "resnet10_3d", False)])
def test_backbone_transfers_and_head_is_fresh(pretrained, task, arch, segmentation):
    runs, _ = pretrained
    path = runs[(task, arch)][0]
    saved = torch.load(path, weights_only=True)["model"]
    torch.manual_seed(11)
    fresh = build_model(arch, 1, segmentation=segmentation)
    torch.manual_seed(11)
    model = build_model(arch, 1, init="pretrained", weights=path, segmentation=segmentation)
    state, fresh_state = model.state_dict(), fresh.state_dict()
    head = classifier_head(model)
    assert head == "fc."
    backbone = [k for k in state if not k.startswith(head) and not k.startswith("seg_head.")]
    assert len(backbone) > 50
    for k in backbone:  # every backbone tensor is the pretrained one, and it is not the fresh one
        assert torch.equal(state[k], saved[k]), k
    changed = [k for k in backbone if state[k].is_floating_point() and not torch.equal(state[k], fresh_state[k])]
    assert len(changed) > 0.9 * len([k for k in backbone if state[k].is_floating_point()])
    # the classification head keeps its fresh initialisation (same seed), not the checkpoint's
    for k in (f"{head}weight", f"{head}bias"):
        assert torch.equal(state[k], fresh_state[k])
    assert not torch.equal(state[f"{head}weight"], saved[f"{head}weight"])
    # a co-training model takes the pretrained segmentation head too (same task)
    seg_keys = [k for k in state if k.startswith("seg_head.")]
    assert bool(seg_keys) == segmentation
    for k in seg_keys:
        assert torch.equal(state[k], saved[k]) if task == "segmentation" else torch.equal(state[k], fresh_state[k])
    # and the pretrained features reach the output: same backbone, same logits up to the head
    x = torch.randn(2, 1, *((8, 32, 32) if arch.endswith("_3d") else (32, 32)),
                    generator=torch.Generator().manual_seed(0))
    model.eval()
    fresh.eval()
    with torch.no_grad():
        assert not torch.allclose(model(x), fresh(x))


def test_backbone_load_errors(tmp_path, pretrained):
    runs, _ = pretrained
    path = runs[("segmentation", "resnet18")][0]
    with pytest.raises(ValueError, match="pretrained for 'resnet18', not 'resnet50'"):
        build_model("resnet50", 1, init="pretrained", weights=path)
    with pytest.raises(ValueError, match=r"conv1.weight has shape .*other input channels"):
        build_model("resnet18", 2, init="pretrained", weights=path)
    torch.save({"fc.weight": torch.zeros(1, 512)}, tmp_path / "raw.pt")
    with pytest.raises(ValueError, match="not an oncoflow checkpoint"):
        build_model("resnet18", 1, init="pretrained", weights=tmp_path / "raw.pt")
    with pytest.raises(ValueError, match="needs a local weights file"):
        build_model("resnet18", 1, init="pretrained")
    with pytest.raises(ValueError, match="needs a segmentation head"):
        pretrain_fold(PretrainConfig(task="segmentation", architecture="vgg16", modalities=["t1c"]),
                      {}, pd.DataFrame(), fold=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="classifies 2D slices"):
        pretrain_fold(PretrainConfig(task="tumor_slice", architecture="resnet10_3d", modalities=["t1c"]),
                      {}, pd.DataFrame(), fold=0, out_dir=tmp_path)


def test_rule_inputs_are_checked_against_the_splits(cohort):
    root, crops, splits = cohort
    part = splits[splits["fold"] == FOLD]
    fit = pretrain_subjects(splits, FOLD)
    check_pretrain_inputs(fit, splits, FOLD)
    test_subject = part.loc[part["role"] == "test", "subject"].iloc[0]
    with pytest.raises(FoldError, match=rf"given subject '{test_subject}' \(role: test\)"):
        check_pretrain_inputs(fit + [test_subject], splits, FOLD)
    external = part.loc[part["role"] == "external", "subject"].iloc[0]
    with pytest.raises(FoldError, match=r"\(role: external\)"):
        check_pretrain_inputs(fit + [external], splits, FOLD)
    with pytest.raises(FoldError, match="lacks 1 of the fold's train/val patients"):
        check_pretrain_inputs(fit[1:], splits, FOLD)
    with pytest.raises(FoldError, match="no fold 7"):
        pretrain_subjects(splits, 7)


def test_classifier_trains_from_the_pretrained_backbone(cohort, pretrained):
    """train_fold with init: pretrained (and co-training): same output files as ever; its first
    step starts from the pretrained backbone (checked via the untrained model it builds)."""
    root, crops, splits = cohort
    runs, _ = pretrained
    path = runs[("segmentation", "resnet18")][0]
    cfg = TrainConfig(architecture="resnet18", modalities=["t1c"], init="pretrained", weights=path,
                      epochs=2, batch_size=8, slices=2, patience=0, seed=0, device="cpu",
                      cotrain_segmentation=True)
    out = root / "classifier"
    preds = train_fold(cfg, crops, splits, out_dir=out, model_name="m", fold=FOLD)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "history.tsv", "predictions.tsv"]
    assert len(preds) == 20 and preds["probability"].between(0, 1).all()
    # train_fold builds its model as below (same seeding): the backbone is the checkpoint's
    seed_everything(cfg.seed + FOLD)
    start = build_model("resnet18", 1, init="pretrained", weights=path, segmentation=True)
    saved = torch.load(path, weights_only=True)["model"]
    assert torch.equal(start.state_dict()["layer4.1.conv2.weight"], saved["layer4.1.conv2.weight"])
    trained = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    assert not torch.equal(trained["layer4.1.conv2.weight"], saved["layer4.1.conv2.weight"])
    assert np.isfinite(pd.read_csv(out / "history.tsv", sep="\t")["train_loss"]).all()


def test_load_backbone_returns_what_it_loaded(pretrained):
    runs, _ = pretrained
    path = runs[("tumor_slice", "resnet18")][0]
    model = build_model("resnet18", 1)
    keys = load_backbone(model, path, "resnet18")
    assert not any(k.startswith("fc.") for k in keys) and "conv1.weight" in keys
    assert set(keys) == {k for k in model.state_dict() if not k.startswith("fc.")}


def test_rotation_turns_each_sample_in_plane_and_returns_its_quarter_turns():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    turned, k = rotate_batch(x, torch.Generator().manual_seed(3))
    assert turned.shape == x.shape and k.dtype == torch.long and set(k.tolist()) <= {0, 1, 2, 3}
    for i in range(2):
        assert torch.equal(turned[i], torch.rot90(x[i], int(k[i]), dims=(-2, -1)))
    ks = rotate_batch(torch.zeros(400, 1, 4, 4), torch.Generator().manual_seed(0))[1]
    assert np.bincount(ks.numpy(), minlength=4).min() > 70  # all four turns drawn


def test_rotation_pretext_learns(tmp_path):
    """Head-like crops (an off-centre ellipse, brighter towards the front) have an orientation:
    the 4-way rotation task is learnt (chance: 0.25)."""
    rng = np.random.default_rng(0)
    crops = {}
    yy, xx = np.mgrid[:32, :32]
    for i in range(12):
        head = ((yy - 17) / 13) ** 2 + ((xx - 16) / 10) ** 2 <= 1
        img = np.where(head, 1.0 + (32 - yy) / 16, 0.0) + rng.normal(0, 0.3, (32, 32))
        stack = np.repeat(img[None], 4, axis=0).astype(np.float32)
        crops[f"head{i:02d}"] = write_crop(tmp_path / f"head{i:02d}.npz", {"t1c": stack},
                                           np.zeros_like(stack, dtype=bool))
    cfg = PretrainConfig(task="rotation", architecture="resnet18", modalities=["t1c"], epochs=6,
                         batch_size=16, depth=4, seed=0, device="cpu", lr=3e-3)
    history = pretrain_cohort(cfg, crops, out_dir=tmp_path / "ckpt", name="heads")
    print(f"\nrotation accuracy per epoch: {history['score'].round(2).tolist()}")
    assert history["score"].iloc[-2:].mean() > 0.9  # wrong targets would stay near 0.25
    assert history["loss"].iloc[-1] < 0.5 * history["loss"].iloc[0]


def test_cohort_pretraining_reads_every_subject_of_that_cohort_and_no_mask(tmp_path, cohort):
    """source: cohort: one checkpoint from all crops passed (another cohort's), task rotation needs
    no tumor mask (the masks are blanked here), and a classifier starts from its backbone."""
    root, crops, _ = cohort
    other = {}
    for subject, path in list(crops.items())[:8]:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["tumor"][:] = 0
        arrays["tumor_area"][:] = 0
        other[f"head{subject}"] = tmp_path / f"head{subject}.npz"
        np.savez(other[f"head{subject}"], **arrays)
    cfg = PretrainConfig(task="rotation", architecture="resnet10_3d", modalities=["t1c"], epochs=2,
                         batch_size=4, depth=8, seed=0, device="cpu")
    history = pretrain_cohort(cfg, other, out_dir=tmp_path / "ckpt", name="normalheads")
    ckpt = torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=True)
    assert ckpt["subjects"] == sorted(other) and ckpt["fold"] == "cohort" and ckpt["task"] == "rotation"
    assert ckpt["model"][classifier_head(build_model("resnet10_3d", 1)) + "weight"].shape[0] == 4
    assert len(history) == 2 and np.isfinite(history["loss"]).all()
    model = build_model("resnet10_3d", 1, init="pretrained", weights=tmp_path / "ckpt" / "checkpoint.pt")
    assert torch.equal(model.state_dict()["conv1.weight"], ckpt["model"]["conv1.weight"])
