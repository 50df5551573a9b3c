"""Explanation maps on the finished tiny demo run (planted, label-dependent tumor phenotype): a map
per test patient and method on the crop grid, mass drawn to the tumor, and the model-parameter
randomisation check, which must flag maps computed from a model whose weights were never trained."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from oncoflow.explain.sanity import explain_test_patients, load_fold_model, randomised, summarise

SETTINGS = {"methods": ["gradcam", "occlusion"], "max_random_spearman": 0.5}  # the schema defaults
CROP = {"slices": 3, "depth": 16}  # tiny_config's crop
SEED = 42  # the demo's cv.seed


def assert_maps_explain_the_model(summary: pd.DataFrame) -> None:
    """What trained maps must show: no model fold flagged by the randomisation check, and occlusion
    maps with more of their mass in the tumor than the tumor's share of the crop (median over the
    model folds: a 3-epoch fold model may miss)."""
    flagged = summary[summary["weights_independent"]]
    assert flagged.empty, f"maps that do not depend on the weights:\n{flagged.to_string()}"
    occlusion = summary[summary["method"] == "occlusion"]
    assert occlusion["tumor_enrichment"].median() > 1, occlusion.to_string()


def _crops(results: Path) -> dict[str, Path]:
    return {p.parent.parent.name: p for p in (results / "subjects").glob("*/crop/crop.npz")}


def test_every_test_patient_has_maps_on_the_crop_grid(finished_run: Path) -> None:
    results = finished_run / "results/demo"
    splits = pd.read_csv(results / "folds/splits.tsv", sep="\t")
    table = pd.read_csv(results / "tables/explanation_sanity.tsv", sep="\t")
    models = sorted(p.name for p in (results / "explain").iterdir())
    assert models == ["flair+t1ce_resnet18", "flair_resnet18", "t1ce_resnet18"]
    assert len(table) == len(models) * splits["fold"].nunique() * 2
    for model in models:
        for fold, rows in splits[splits["role"] == "test"].groupby("fold"):
            maps = results / "explain" / model / f"fold{fold}" / "maps"
            patients = pd.read_csv(maps.parent / "patients.tsv", sep="\t")
            assert sorted(patients["subject"].unique()) == sorted(rows["subject"])
            for subject in rows["subject"]:
                assert (maps / f"{subject}.png").stat().st_size > 0
                with np.load(results / f"subjects/{subject}/crop/crop.npz") as crop:
                    grid, pixel_mm, area = crop["tumor"].shape, float(crop["pixel_mm"]), crop["tumor_area"]
                for method in SETTINGS["methods"]:
                    img = nib.load(maps / f"{subject}_{method}.nii.gz")
                    data = np.asarray(img.dataobj)
                    assert data.shape == (grid[1], grid[2], grid[0])  # (x, y, slice) of the crop
                    assert img.header.get_zooms()[0] == pytest.approx(pixel_mm, rel=1e-5)
                    used = np.flatnonzero(data.reshape(-1, grid[0]).any(axis=0))
                    # a 2D model's map lies on the slices it read: the 3 with most tumor
                    assert set(used) <= set(np.argsort(-area, kind="stable")[:3])


def test_trained_maps_pass_the_check_and_untrained_weights_fail_it(finished_run: Path, tmp_path: Path) -> None:
    results = finished_run / "results/demo"
    table = pd.read_csv(results / "tables/explanation_sanity.tsv", sep="\t")
    assert_maps_explain_the_model(table)
    # The weights that fold's training started from (cv.seed + fold), as a training run that never
    # updated them would leave in the checkpoint: its maps are the random model's, and the check says so.
    trained = results / "models/t1ce_resnet18/fold0/checkpoint.pt"
    ckpt = torch.load(trained, map_location="cpu", weights_only=True)
    ckpt["model"] = randomised(load_fold_model(trained), SEED + 0).model.state_dict()
    untrained = tmp_path / "checkpoint.pt"
    torch.save(ckpt, untrained)
    splits = pd.read_csv(results / "folds/splits.tsv", sep="\t")
    patients = explain_test_patients(untrained, _crops(results), splits, model_name="t1ce_resnet18", fold=0,
                                     crop=CROP, settings=SETTINGS, seed=SEED, out_dir=tmp_path / "maps")
    summary = summarise(patients, SETTINGS["max_random_spearman"]).set_index("method")
    # occlusion: the same maps; Grad-CAM: flat maps (layer4 of a 32-pixel crop is 1x1), no ranks
    assert summary.loc["occlusion", "random_spearman"] == pytest.approx(1.0)
    assert summary.loc["gradcam", "patients_flat_map"] == summary.loc["gradcam", "n_patients"]
    with pytest.raises(AssertionError, match="do not depend on the weights"):
        assert_maps_explain_the_model(summary.reset_index())


def test_3d_maps_cover_every_crop_slice(finished_run: Path, tmp_path: Path) -> None:
    """A 3D network's maps (here a seeded, untrained ResNet-10: shapes, not meaning) are resampled
    from crop.depth back onto each crop's own slices."""
    from oncoflow.explain.outputs import write_subject_maps
    from oncoflow.explain.sanity import FoldModel, explain_fold

    results = finished_run / "results/demo"
    crops = dict(sorted(_crops(results).items())[:1])
    net = randomised(FoldModel(torch.nn.Identity(), "resnet10_3d", ["t1ce"], False), 1)
    patients, maps, samples = explain_fold(net, crops, CROP, model_name="r3d", fold=0, seed=2)
    assert maps["gradcam"].shape == (1, CROP["depth"], 32, 32)
    assert patients["method"].tolist() == ["gradcam", "occlusion"]
    write_subject_maps(samples, maps, crops, architecture="resnet10_3d", dims=3, slices=CROP["slices"],
                       modality="t1ce", out_dir=tmp_path, title="r3d")
    (subject,) = crops
    with np.load(crops[subject]) as crop:
        depth = crop["tumor"].shape[0]
    data = np.asarray(nib.load(tmp_path / f"{subject}_gradcam.nii.gz").dataobj)
    assert data.shape == (32, 32, depth)
    assert (tmp_path / f"{subject}.png").is_file()
