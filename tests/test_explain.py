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

from oncoflow.explain.maps import GRADCAM_LAYERS, MIN_CELLS
from oncoflow.explain.sanity import explain_test_patients, load_fold_model, randomised, summarise

SETTINGS = {"methods": ["gradcam", "occlusion"], "max_random_spearman": 0.5}  # the schema defaults
CROP = {"slices": 3, "depth": 16}  # tiny_config's crop
SEED = 42  # the demo's cv.seed


def assert_maps_explain_the_model(summary: pd.DataFrame) -> None:
    """What trained maps must show: the randomisation check flags no occlusion model fold and at most
    one Grad-CAM model fold, the Grad-CAM folds' median rho below the threshold (3-epoch fold
    models; measured since Grad-CAM explains each input's own class: flair+t1ce_resnet18 fold 1's
    layer2 maps, 1 of 4 patients' flat, correlate 0.83 with the random model's, the 8 other model
    folds -0.12 to 0.35), and occlusion maps with more of their mass in the tumor than the tumor's
    share of the crop (median over the model folds: a 3-epoch fold model may miss)."""
    flagged = summary[summary["weights_independent"]]
    message = f"maps that do not depend on the weights:\n{flagged.to_string()}"
    assert (flagged["method"] == "gradcam").all() and len(flagged) <= 1, message
    gradcam = summary[summary["method"] == "gradcam"]
    assert gradcam["random_spearman"].median() < SETTINGS["max_random_spearman"], message  # measured 0.22
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
    # Grad-CAM on the deepest stage that resolves a 32-pixel crop: maps with ranks (flat ones: no mass)
    gradcam = table[table["method"] == "gradcam"]
    assert set(gradcam["layer"]) == {"layer2 (4x4 cells)"} and table.loc[table["method"] == "occlusion", "layer"].isna().all()
    assert gradcam["patients_flat_map"].sum() < gradcam["n_patients"].sum() and gradcam["random_spearman"].notna().any()
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
    # both methods: the same maps, flagged; Grad-CAM on layer2 (layer4 of a 32-pixel crop is 1x1: flat, no ranks)
    assert summary["random_spearman"].tolist() == pytest.approx([1.0, 1.0])
    assert summary["weights_independent"].all()
    assert summary["layer"].tolist() == ["layer2 (4x4 cells)", ""]
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


def test_maps_on_the_reference_grid_open_over_the_patients_scan(finished_run: Path) -> None:
    """Each map is also written on the grid of the image its crop was taken from (the brain-extracted
    images, brain/): that file's shape and affine, so it opens over the scan; the crop-grid NIfTI sits
    where the crop lies; a map voxel at a known crop position lands at the reference voxel the affines
    put it in; the crop's own tumor mask put back the same way is the subject's tumor mask there."""
    from scipy import ndimage

    from oncoflow.explain.outputs import reference_grid_map

    results = finished_run / "results/demo"
    maps = results / "explain/t1ce_resnet18/fold0/maps"
    subjects = sorted(p.name.removesuffix("_occlusion.nii.gz") for p in maps.glob("*_occlusion.nii.gz"))
    assert subjects
    for subject in subjects:
        crop_path = results / f"subjects/{subject}/crop/crop.npz"
        brain = nib.load(results / f"subjects/{subject}/brain/brain_mask.nii.gz")
        with np.load(crop_path) as crop:
            crop_affine, tumor = crop["crop_affine"], crop["tumor"].astype(np.float32)
        for method in SETTINGS["methods"]:
            on_ref = nib.load(maps / f"reference/{subject}_{method}.nii.gz")
            assert on_ref.shape == brain.shape and np.allclose(on_ref.affine, brain.affine)
            on_crop = nib.load(maps / f"{subject}_{method}.nii.gz")
            assert np.allclose(on_crop.affine, crop_affine)
            values = np.asarray(on_ref.dataobj)
            assert values.max() > 0 and values.sum() > 0
            np.testing.assert_allclose(values, np.asarray(reference_grid_map(
                np.asarray(on_crop.dataobj).transpose(2, 0, 1), crop_path).dataobj), atol=1e-6)
        # a blob around the crop's tumor centre (a single voxel can fall between the coarser reference
        # voxels): its mass lands where the affines put that crop voxel (measured: at most 0.65 mm away,
        # reference voxels 3.6-4.3 mm, crop pixels 1.25-1.5 mm)
        k, i, j = np.argwhere(tumor).mean(axis=0).round().astype(int)
        blob = np.zeros_like(tumor)
        blob[k, i, j] = 1.0
        landed = np.asarray(reference_grid_map(ndimage.gaussian_filter(blob, (1, 3, 3)), crop_path).dataobj)
        centre = np.array(ndimage.center_of_mass(landed))
        distance = np.linalg.norm((brain.affine @ [*centre, 1])[:3] - (crop_affine @ [i, j, k, 1])[:3])
        assert distance < 1.0, (subject, distance)
        back = np.asarray(reference_grid_map(tumor, crop_path).dataobj) > 0.5
        truth = np.asarray(nib.load(results / f"subjects/{subject}/coreg/tumor_mask.nii.gz").dataobj) > 0.5
        assert 2 * (back & truth).sum() / (back.sum() + truth.sum()) > 0.8, subject


# --- where the maps appear: the failure analysis (reporting/failures.*) ---------------------------


def test_failures_show_each_cnn_patients_map_and_its_check(finished_run: Path) -> None:
    """Every misclassified cross-validation patient of a CNN links the map of the fold model that
    predicted them (a link that resolves from the reporting folder; the report page embeds it) with
    that model fold's check; other models' patients say why they have none."""
    import re

    from oncoflow.report.failures import NOT_A_CNN

    results = finished_run / "results/demo"
    failures = pd.read_csv(results / "reporting/failures.tsv", sep="\t", dtype=str, keep_default_na=False)
    sanity = pd.read_csv(results / "tables/explanation_sanity.tsv", sep="\t")
    splits = pd.read_csv(results / "folds/splits.tsv", sep="\t", dtype={"subject": str})
    test_fold = splits[splits["role"] == "test"].set_index("subject")["fold"]
    cnn = failures["model"].isin(set(sanity["model"]))
    cv = failures[cnn & (failures["cohort"] == "cv")]
    assert len(cv) > 0
    for r in cv.itertuples():
        assert r.explanation_map == f"explain/{r.model}/fold{test_fold[r.subject]}/maps/{r.subject}.png"
        assert (results / r.explanation_map).stat().st_size > 0
        check = sanity[(sanity["model"] == r.model) & (sanity["fold"] == int(r.fold))].set_index("method")
        occlusion = check.loc["occlusion"]
        verdict = "FLAGGED" if occlusion["weights_independent"] else "not flagged"
        assert f"occlusion sensitivity: {verdict} (rho {occlusion['random_spearman']:.2f}" in r.map_check
        gradcam = check.loc["gradcam"]
        if pd.isna(gradcam["random_spearman"]):
            assert "Grad-CAM: not checked, flat maps" in r.map_check  # a flat map is no pass
        else:
            verdict = "FLAGGED" if gradcam["weights_independent"] else "not flagged"
            assert f"Grad-CAM: {verdict}" in r.map_check and f"rho {gradcam['random_spearman']:.2f}" in r.map_check
    others = failures[~cnn]
    assert len(others) and (others["explanation_map"] == "").all() and (others["map_check"] == NOT_A_CNN).all()
    external = failures[cnn & (failures["cohort"] != "cv")]
    assert (external["explanation_map"] == "").all() and external["map_check"].str.startswith("no map (external").all()
    md = (results / "reporting/failures.md").read_text()
    targets = re.findall(r"\]\((\.\./[^)\s]+)\)", md)
    assert [t for t in targets if not (results / "reporting" / t).is_file()] == []
    images = re.findall(r"!\[[^\]]*\]\(\.\./(explain/[^)\s]+)\)", md)
    # the misclassified patients' maps the report shows (explain.report_misclassified), shown; the others linked
    overlays = pd.read_csv(results / "reporting/overlays.tsv", sep="\t", dtype={"subject": str})
    shown = overlays[overlays["in_report"] & (overlays["outcome"] != "correct")]
    assert sorted(images) == sorted(shown["overlay"]) and set(images) <= set(cv["explanation_map"])
    assert all(f"](../{p})" in md for p in cv["explanation_map"])
    assert f"{NOT_A_CNN}" in md and "Correctly classified, for comparison: " in md
    page = (results / "reporting/failures.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(shown)  # the report's page stands alone


def test_a_cnn_patient_without_a_map_is_an_error(tmp_path: Path) -> None:
    from oncoflow.report.failures import MapIndex

    sanity = pd.DataFrame({"model": ["m"], "fold": [0], "method": ["occlusion"], "n_patients": [2],
                           "patients_flat_map": [0], "random_spearman": [0.62], "weights_independent": [True]})
    maps = MapIndex(frozenset({"m"}), sanity, tmp_path)
    folder = tmp_path / "explain/m/fold0/maps"
    folder.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="m fold 0: no explanation map of test patient s1"):
        maps.map_path("m", "cv", "s1", 0)
    (folder / "s1_occlusion.nii.gz").write_bytes(b"x")  # an encoder's window: NIfTI, no overlay
    assert maps.map_path("m", "cv", "s1", 0) == (
        "explain/m/fold0/maps/s1_occlusion.nii.gz",
        "occlusion sensitivity: FLAGGED, maps do not depend on the weights (rho 0.62)")
    with pytest.raises(KeyError, match="m fold 1: not in tables/explanation_sanity.tsv"):
        (folder.parent.parent / "fold1/maps").mkdir(parents=True)
        (folder.parent.parent / "fold1/maps/s1.png").write_bytes(b"x")
        maps.map_path("m", "cv", "s1", 1)


def test_model_card_states_each_models_check(finished_run: Path) -> None:
    """The card's per-model check is tables/explanation_sanity.tsv over the fold models."""
    import json

    results = finished_run / "results/demo"
    sanity = pd.read_csv(results / "tables/explanation_sanity.tsv", sep="\t")
    card = json.loads((results / "reporting/model_card.json").read_text())
    text = (results / "reporting/model_card.md").read_text()
    rows = {(r["model"], r["method"]): r for r in card["explanation_checks"]}
    assert len(rows) == sanity.groupby(["model", "method"]).ngroups
    for (model, method), part in sanity.groupby(["model", "method"]):
        row = rows[(model, {"gradcam": "Grad-CAM", "occlusion": "occlusion sensitivity"}[method])]
        assert row["folds"] == len(part) and row["flagged"] == int(part["weights_independent"].sum())
        rho = part["random_spearman"].median()
        assert row["random_spearman"] == (None if pd.isna(rho) else pytest.approx(rho))
        assert row["tumor_share"] == pytest.approx(part["tumor_share"].median())
        cells = f"| {model} | {row['method']} | {len(part)} | {row['flagged']} | {int(part['random_spearman'].isna().sum())} | "
        assert cells + ("n/a" if pd.isna(rho) else f"{rho:.2f}") in text


def test_claim_item_31_names_the_methods_and_their_check(finished_run: Path) -> None:
    """CLAIM 2024 item 31 (explainability methods and their validation) is filled from the run's
    table; without maps it says why (no CNN: not applicable; explain off: the authors')."""
    from workflow_helpers import report_facts_for, tiny_config

    from oncoflow.report.checklists import AUTHOR, FILLED, NA, RunFacts, fill_checklist

    results = finished_run / "results/demo"
    claim = pd.read_csv(results / "reporting/checklist_claim.tsv", sep="\t", dtype=str).set_index("item")
    sanity = pd.read_csv(results / "tables/explanation_sanity.tsv", sep="\t")
    assert claim.at["31", "status"] == FILLED
    assert claim.at["31", "evidence"] == "tables/explanation_sanity.tsv; explain/<model>/fold<k>/maps"
    occlusion = sanity[sanity["method"] == "occlusion"]["random_spearman"].median()
    text = claim.at["31", "text"]
    assert "Grad-CAM, occlusion sensitivity" in text and "model-parameter randomisation" in text
    assert f"occlusion sensitivity: median trained-vs-random Spearman rho {occlusion:.2f} over {len(sanity) // 2}" in text
    assert "explanation maps of the fold model" in claim.at["39", "text"]
    config = tiny_config()
    config["explain"] = {"activate": False}
    off = fill_checklist("claim", RunFacts(report_facts_for(config), 12, 7, 2, 0, ["t1ce_resnet18"], 3))
    assert off.set_index("item").at["31", "status"] == AUTHOR
    config["models"], config["fusion"] = [], {"methods": []}
    no_cnn = fill_checklist("claim", RunFacts(report_facts_for(config, baseline=True), 12, 7, 2, 0, ["baseline"], 3))
    assert no_cnn.set_index("item").at["31", "status"] == NA


def test_flat_maps_count_as_checks_not_made_never_as_passed() -> None:
    """A method whose maps were all flat has no rank correlation: methods.md says the check was not
    made; 'none flagged' counts only the checks made."""
    from oncoflow.report.explanations import explanation_text

    table = pd.DataFrame({"model": ["m", "m"], "fold": [0, 0], "method": ["gradcam", "occlusion"],
                          "random_spearman": [np.nan, 0.07], "patients_flat_map": [4, 0], "n_patients": [4, 4],
                          "tumor_share": [0.2, 0.3], "tumor_area_share": [0.1, 0.1], "weights_independent": [False, False]})
    settings = {"methods": ["gradcam", "occlusion"], "max_random_spearman": 0.5}
    both = explanation_text(table, settings, True)
    assert "None of the 1 checks made was flagged." in both and "1 of 2 checks" in both and "were not made" in both
    assert "Grad-CAM: no rank correlation" in both  # a table written before Grad-CAM's layer was recorded
    layered = table.assign(layer=["layer2 (4x4 cells)", np.nan])  # occlusion's empty cell, as read back
    text = explanation_text(layered, settings, True)
    assert "Grad-CAM on layer2 (4x4 cells): no rank correlation" in text and "occlusion sensitivity: median" in text
    mixed = pd.concat([layered, layered.assign(fold=1, layer=["layer4 (7x7 cells)", np.nan])])
    assert "Grad-CAM on layer2 (4x4 cells) in 1 model folds, layer4 (7x7 cells) in 1 model folds: " in (
        explanation_text(mixed, settings, True))
    flat_only = explanation_text(table.iloc[:1], {**settings, "methods": ["gradcam"]}, True)
    assert "No check could be made" in flat_only and "flagged." not in flat_only


@pytest.mark.parametrize("architecture", sorted(GRADCAM_LAYERS))
def test_every_architectures_gradcam_layer_gives_a_map_on_the_input_grid(architecture: str) -> None:
    """Each architecture's Grad-CAM layers exist, deepest first (no candidate's grid is finer than an
    earlier one's), and the chosen one yields one finite map per input on its grid, for a 2-channel
    input (a fused model): the map rule of every study's architectures without an end-to-end run
    each (tests/test_studies.py runs the rule in the 3D and co-training shapes)."""
    from oncoflow.explain.maps import choose_layer, gradcam, layer_grids
    from oncoflow.models.zoo import build_model

    torch.manual_seed(0)
    model = build_model(architecture, 2).eval()
    side = 64 if architecture == "deepbet_encoder_3d" else 32  # deepbet downsamples by 32
    shape = (2, 2, side, side, side) if architecture.endswith("_3d") else (2, 2, 64, 64)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    cells = [int(np.prod(grid)) for grid in layer_grids(model, architecture, x).values()]
    assert cells == sorted(cells), f"{architecture}: candidates not deepest first: {cells}"
    layer = choose_layer(model, architecture, x)
    assert layer.name in GRADCAM_LAYERS[architecture]
    maps = gradcam(model, layer.name, x)
    assert maps.shape == (shape[0], *shape[2:]) and np.isfinite(maps).all()


def _phantom_crops(side: int = 32) -> np.ndarray:
    """Four axial 2-channel (t1ce, flair) crops of side ``side`` around the head phantom's centre,
    z-scored per channel: a fused model's input at the demo's crop size."""
    from oncoflow.demo.phantom import load_phantom

    phantom = load_phantom()
    cx, cy, cz = (int(np.mean(a)) for a in np.nonzero(phantom.brain_mask))
    half = side // 2
    x = np.stack([phantom.contrasts[m][cx - half : cx + half, cy - half : cy + half, cz - 2 : cz + 2]
                  for m in ("t1ce", "flair")])  # (channel, x, y, slice)
    x = (x - x.mean(axis=(1, 2, 3), keepdims=True)) / x.std(axis=(1, 2, 3), keepdims=True)
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)).astype(np.float32)


def test_gradcam_takes_an_earlier_stage_where_the_last_is_too_coarse() -> None:
    """On the demo's 32-pixel crops ResNet-18's layer4 is 1x1 (every map flat, no ranks): Grad-CAM
    takes the deepest stage with MIN_CELLS cells a side, whose maps vary and whose trained-vs-random
    ranks are computable; a 224-pixel input keeps layer4."""
    from oncoflow.explain.maps import choose_layer, gradcam, layer_grids
    from oncoflow.explain.sanity import FLAT_TOLERANCE, _spearman
    from oncoflow.models.zoo import build_model

    x = _phantom_crops()
    torch.manual_seed(0)
    model = build_model("resnet18", 2).eval()
    torch.manual_seed(1)
    other = build_model("resnet18", 2).eval()
    assert layer_grids(model, "resnet18", x)["layer4"] == (1, 1)
    layer = choose_layer(model, "resnet18", x)
    assert (layer.name, layer.grid) == ("layer2", (4, 4)) and min(layer.grid) >= MIN_CELLS
    assert str(layer) == "layer2 (4x4 cells)"

    def flat(maps: np.ndarray) -> list[bool]:
        return [bool(np.ptp(m) <= FLAT_TOLERANCE * np.abs(m).max()) for m in maps]

    assert flat(gradcam(model, "layer4", x)) == [True] * len(x)  # what the last stage gave
    maps, random_maps = gradcam(model, layer.name, x), gradcam(other, layer.name, x)
    assert flat(maps) == [False] * len(x)
    # the four slices as one patient, as the sanity table ranks them: a random model's slice may
    # have no mass (every weighted activation negative), not all four
    assert not all(flat(random_maps)) and np.isfinite(_spearman(maps, random_maps))
    big = np.random.default_rng(0).normal(size=(1, 2, 224, 224)).astype(np.float32)
    assert choose_layer(model, "resnet18", big) == choose_layer(model, "resnet18", big[:, :, ::-1].copy())
    assert str(choose_layer(model, "resnet18", big)) == "layer4 (7x7 cells)"


def test_a_batch_of_both_classes_gives_each_input_its_own_map() -> None:
    """Grad-CAM of a batch holding a positive and a negative prediction gives each input the map it
    gets alone (MONAI, handed a tensor of classes, backpropagates every input's score for every class
    in the batch: one positive and one negative input cancelled to flat maps); a ``target`` class
    explains that class for every input (the class an ensemble reports, oncoflow.predict.maps)."""
    from oncoflow.explain.maps import gradcam
    from oncoflow.models.zoo import build_model

    x = _phantom_crops()[:2]
    torch.manual_seed(0)
    model = build_model("resnet18", 2).eval()
    with torch.no_grad():  # move the bias half way between the two logits: one of each class
        logits = model(torch.from_numpy(x)).ravel()
        model.fc.bias -= logits.mean()
        assert (model(torch.from_numpy(x)).ravel() > 0).tolist() in ([True, False], [False, True])
    both = gradcam(model, "layer2", x)
    alone = np.stack([gradcam(model, "layer2", x[i : i + 1])[0] for i in range(2)])
    assert (both.max(axis=(1, 2)) > 0).all()
    np.testing.assert_allclose(both, alone, rtol=1e-5, atol=1e-9)
    positive = gradcam(model, "layer2", x, target=1)
    negative = gradcam(model, "layer2", x, target=0)
    assert not np.allclose(positive, negative)
