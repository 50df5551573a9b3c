"""Radiomics branch: IBSI features (MIRP) with input checks, per-fold selection that never sees a
test patient, clinical imputation, rad-score / clinical / combined models, config checks."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from oncoflow.config import ConfigError, check_config
from oncoflow.sheet import check_radiomics_samples
from oncoflow.harmonisation import HarmonisationSettings
from oncoflow.radiomics.features import ExtractionSettings, RadiomicsInputError, extract, gather
from oncoflow.radiomics.clinical import ClinicalEncoder
from oncoflow.radiomics.models import fit_fold
from oncoflow.radiomics.names import radiomics_model_names
from oncoflow.radiomics.selection import SelectionSettings, fit_radscore
from oncoflow.train.folds import make_folds

SUBJECT = "demo007"


@pytest.fixture(scope="module")
def lesion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A rendered demo T1CE volume (phantom head, tumor, noise, bias) and its tumor mask."""
    from oncoflow.demo.cohort import simulate_subject

    series = simulate_subject(6, 1, seed=3, voxel_scale=1.5).by_modality("t1ce")
    out = tmp_path_factory.mktemp("lesion")
    image, mask = out / "t1ce.nii.gz", out / "tumor_mask.nii.gz"
    affine = series.geometry.affine
    nib.save(nib.Nifti1Image(series.pixels.astype(np.float32), affine), str(image))
    nib.save(nib.Nifti1Image(series.mask.astype(np.uint8), affine), str(mask))
    assert series.mask.sum() > 40
    return image, mask


def test_features_cover_ibsi_families_and_measure_the_mask(lesion: tuple[Path, Path]) -> None:
    image, mask = lesion
    row = extract(SUBJECT, image, mask, ExtractionSettings(bin_width=25.0))
    assert row["subject"].tolist() == [SUBJECT]
    prefixes = {c.split("_")[0] for c in row.columns[1:]}
    # shape, first order (statistics, histogram), GLCM, GLRLM, GLSZM, NGLDM (GLDM), NGTDM
    assert {"morph", "stat", "ih", "cm", "rlm", "szm", "ngl", "ngt"} <= prefixes, prefixes
    assert not {"morph_moran_i", "morph_geary_c"} & set(row.columns)  # left out (slow Monte Carlo)
    img = nib.load(str(mask))
    voxel_ml = np.prod(img.header.get_zooms()[:3])
    volume = float(np.asarray(img.dataobj).sum() * voxel_ml)
    # IBSI voxel-count volume equals the mask's; the mesh volume is close to it
    assert row["morph_vol_approx"].iloc[0] == pytest.approx(volume, rel=1e-6)
    assert row["morph_volume"].iloc[0] == pytest.approx(volume, rel=0.15)
    data = np.asarray(nib.load(str(image)).dataobj)[np.asarray(img.dataobj) > 0]
    assert row["stat_mean"].iloc[0] == pytest.approx(data.mean(), rel=1e-5)


def test_features_identical_across_two_runs(lesion: tuple[Path, Path], tmp_path: Path) -> None:
    image, mask = lesion
    settings = ExtractionSettings(bin_width=25.0)
    paths = []
    for run in range(2):
        table = gather([extract(SUBJECT, image, mask, settings)])
        path = tmp_path / f"features{run}.tsv"
        table.to_csv(path, sep="\t", index=False, float_format="%.10g")  # as gather_radiomics writes it
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_settings_change_the_features_and_are_recorded(lesion: tuple[Path, Path]) -> None:
    image, mask = lesion
    coarse = extract(SUBJECT, image, mask, ExtractionSettings(bin_width=50.0))
    fine = extract(SUBJECT, image, mask, ExtractionSettings(bin_width=10.0))
    # MIRP names carry the discretisation (..._fbs_w50.0): a settings change cannot go unnoticed
    (coarse_entropy,) = [c for c in coarse.columns if c.startswith("ih_entropy")]
    (fine_entropy,) = [c for c in fine.columns if c.startswith("ih_entropy")]
    assert coarse_entropy.endswith("w50.0") and fine_entropy.endswith("w10.0")
    assert fine[fine_entropy].iloc[0] > coarse[coarse_entropy].iloc[0]
    record = ExtractionSettings(bin_width=10.0, resampled_spacing=(2.0, 2.0, 2.0)).record()
    assert record["library"] == "mirp" and record["version"] == "2.5.0"
    assert record["bin_width"] == 10.0 and record["mirp_arguments"]["new_spacing"] == [2.0, 2.0, 2.0]


def test_fixed_bin_number_textures_do_not_depend_on_scanner_gain(lesion: tuple[Path, Path], tmp_path: Path) -> None:
    """The same lesion with intensities x3 (another receiver gain, arbitrary MRI units): with a
    fixed bin number the texture features are unchanged; with a fixed bin width they are not."""
    image, mask = lesion
    img = nib.load(str(image))
    brighter = tmp_path / "t1ce_x3.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32) * 3, img.affine), str(brighter))
    fbn = ExtractionSettings(discretisation="fixed_bin_number", bin_number=32,
                             families=("glcm", "glszm"))
    fbs = ExtractionSettings(bin_width=25.0, families=("glcm", "glszm"))
    a, b = extract(SUBJECT, image, mask, fbn), extract(SUBJECT, brighter, mask, fbn)
    texture = [c for c in a.columns if c.startswith(("cm_", "szm_"))]
    assert texture and all(c.endswith("fbn_n32") or "_fbn_n32" in c for c in texture), texture[:3]
    np.testing.assert_allclose(a[texture].to_numpy(), b[texture].to_numpy(), rtol=1e-6)
    c, d = extract(SUBJECT, image, mask, fbs), extract(SUBJECT, brighter, mask, fbs)
    (entropy,) = [k for k in c.columns if k.startswith("cm_joint_entr")]
    assert d[entropy].iloc[0] > c[entropy].iloc[0] + 0.5  # 3x as many bins of width 25
    record = fbn.record()
    assert record["discretisation"] == "fixed_bin_number" and record["bin_number"] == 32
    assert "bin_width" not in record and "bin_number" not in fbs.record()  # only what shaped the features
    assert record["mirp_arguments"]["base_discretisation_n_bins"] == 32
    with pytest.raises(ValueError, match="discretisation"):
        ExtractionSettings(discretisation="fixed_bin_count").mirp_arguments()


def _write_mask(path: Path, like: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    ref = nib.load(str(like))
    nib.save(nib.Nifti1Image(data.astype(np.uint8), ref.affine if affine is None else affine), str(path))
    return path


def test_empty_mask_names_subject(lesion: tuple[Path, Path], tmp_path: Path) -> None:
    image, mask = lesion
    shape = nib.load(str(mask)).shape
    empty = _write_mask(tmp_path / "empty.nii.gz", mask, np.zeros(shape))
    with pytest.raises(RadiomicsInputError, match=rf"subject '{SUBJECT}'.*empty\.nii\.gz.*empty"):
        extract(SUBJECT, image, empty, ExtractionSettings())


def test_one_voxel_mask_names_subject(lesion: tuple[Path, Path], tmp_path: Path) -> None:
    image, mask = lesion
    data = np.zeros(nib.load(str(mask)).shape)
    data[10, 10, 5] = 1
    one = _write_mask(tmp_path / "one.nii.gz", mask, data)
    with pytest.raises(RadiomicsInputError, match=rf"subject '{SUBJECT}'.*one\.nii\.gz has 1 voxel"):
        extract(SUBJECT, image, one, ExtractionSettings())


def test_mask_on_wrong_grid_names_subject(lesion: tuple[Path, Path], tmp_path: Path) -> None:
    image, mask = lesion
    data = np.asarray(nib.load(str(mask)).dataobj)
    cropped = _write_mask(tmp_path / "cropped.nii.gz", mask, data[:, :, 1:])
    with pytest.raises(RadiomicsInputError, match=rf"subject '{SUBJECT}'.*not on the grid"):
        extract(SUBJECT, image, cropped, ExtractionSettings())
    shifted_affine = nib.load(str(mask)).affine.copy()
    shifted_affine[:3, 3] += 4.0
    shifted = _write_mask(tmp_path / "shifted.nii.gz", mask, data, shifted_affine)
    with pytest.raises(RadiomicsInputError, match=rf"subject '{SUBJECT}'.*shifted\.nii\.gz.*not on the grid"):
        extract(SUBJECT, image, shifted, ExtractionSettings())


def test_constant_image_names_subject(lesion: tuple[Path, Path], tmp_path: Path) -> None:
    image, mask = lesion
    ref = nib.load(str(image))
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.full(ref.shape, 100.0, dtype=np.float32), ref.affine), str(flat))
    with pytest.raises(RadiomicsInputError, match=rf"subject '{SUBJECT}'.*flat\.nii\.gz is constant"):
        extract(SUBJECT, flat, mask, ExtractionSettings())


# --- per-fold models --------------------------------------------------------------------------

def _cohort(n: int = 60, n_features: int = 40, seed: int = 0):
    """Features with a weak signal in three of them (plus redundant copies and a constant one),
    a sample sheet with age (some blank) and gender, and 5 folds."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)]
    rng.shuffle(y)
    x = rng.normal(size=(n, n_features))
    x[:, :3] += 1.2 * y[:, None]
    x[:, 3] = x[:, 0] * 2 + rng.normal(scale=0.01, size=n)  # redundant with feature 0
    x[:, 4] = 7.0  # constant
    subjects = [f"s{i:03d}" for i in range(n)]
    features = pd.DataFrame(x, columns=[f"f{j:02d}" for j in range(n_features)])
    features.insert(0, "subject", subjects)
    age = (50 + 10 * y + rng.normal(scale=8, size=n)).round().astype(int).astype(str)
    age[[1, 7]] = ""
    sheet = pd.DataFrame({"subject": subjects, "cohort": "train", "label": y.astype(str), "age": age,
                          "gender": rng.choice(["1", "2"], size=n)}).set_index("subject", drop=False)
    splits = make_folds(sheet.assign(y=y), label="y", folds=5, seed=42, val_fraction=0.25)
    return features, sheet, splits


SETTINGS = SelectionSettings(c_grid=(0.1, 0.3, 1.0), inner_folds=3, seed=42)


@pytest.mark.parametrize("model, harmonisation", [("radiomics_original", None), ("clinical", None),
                                                   ("combined_original", None),
                                                   ("radiomics_original", HarmonisationSettings("combat", "own", 3))])
def test_selection_never_sees_a_test_patient(model: str, harmonisation: HarmonisationSettings | None) -> None:
    features, sheet, splits = _cohort()
    splits["site"] = splits["subject"].str[-1].map(lambda d: "ABC"[int(d) % 3])  # with ComBat: three sites
    fit = partial(fit_fold, harmonisation=harmonisation)
    fold = 1
    part = splits[splits["fold"] == fold]
    test = part.loc[part["role"] == "test", "subject"].tolist()
    train = part.loc[part["role"] == "train", "subject"].tolist()
    assert "val" in set(part["role"])
    preds, coefs = fit(model, fold, splits, sheet, ["age", "gender"], SETTINGS, features)
    assert set(preds["role"]) == {"train", "val", "test"}
    assert list(preds.columns) == ["subject", "fold", "model", "role", "y_true", "probability"]

    # Scramble the test patients' features, labels and clinical values: nothing fitted changes.
    rng = np.random.default_rng(1)
    f2, s2, sp2 = features.copy(), sheet.copy(), splits.copy()
    is_test = f2["subject"].isin(test)
    f2.loc[is_test, f2.columns[1:]] = rng.normal(scale=50, size=(is_test.sum(), f2.shape[1] - 1))
    s2.loc[test, "age"] = "99"
    flip = (sp2["fold"] == fold) & sp2["subject"].isin(test)
    sp2.loc[flip, "label"] = 1 - sp2.loc[flip, "label"]
    preds2, coefs2 = fit(model, fold, sp2, s2, ["age", "gender"], SETTINGS, f2)
    pd.testing.assert_frame_equal(coefs, coefs2)
    others = ~preds["subject"].isin(test)
    np.testing.assert_array_equal(preds.loc[others, "probability"], preds2.loc[others, "probability"])

    # Fitted on train + val (radiomics.fit_validation, the default).
    assert coefs["n_train"].iloc[0] == len(part[part["role"].isin(["train", "val"])])

    # The same change to one training patient does change the fit.
    f3, s3 = features.copy(), sheet.copy()
    f3.loc[f3["subject"] == train[0], f3.columns[1:]] = 25.0
    s3.loc[train[0], "age"] = "99"
    _, coefs3 = fit(model, fold, splits, s3, ["age", "gender"], SETTINGS, f3)
    assert not coefs["coefficient"].equals(coefs3["coefficient"])


def test_filters_and_lasso_are_auditable() -> None:
    features, sheet, splits = _cohort()
    part = splits[splits["fold"] == 0]
    train = part.loc[part["role"] == "train", "subject"]
    x = features.set_index("subject").loc[train]
    y = part.set_index("subject").loc[train, "label"].to_numpy()
    rad = fit_radscore(x, y, SETTINGS)
    table = rad.coefficients().set_index("term")
    assert table.loc["f04", "status"] == "variance"
    # f00 and its near-copy f03: exactly one survives the correlation filter
    assert sorted(table.loc[["f00", "f03"], "status"]).count("correlation") == 1
    assert set(rad.selected()) & {"f00", "f01", "f02", "f03"}, rad.selected()
    assert rad.c in SETTINGS.c_grid and set(rad.inner_auc) == set(SETTINGS.c_grid)
    # the training-set AUC of the rad-score reflects the planted signal
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, rad.score(x)) > 0.75


def test_clinical_imputation_uses_training_median_and_mode() -> None:
    sheet = pd.DataFrame({"age": ["40", "", "60", "50", "70"], "gender": ["1", "2", "", "2", "1"],
                          "site": ["a", "b", "b", "", "b"]}, index=list("abcde"))
    enc = ClinicalEncoder.fit(sheet.loc[["a", "b", "c", "d"]], ["age", "gender", "site"])
    assert enc.numeric == {"age": 50.0}
    assert enc.categorical["gender"][0] == "2" and enc.categorical["site"][0] == "b"
    assert enc.imputed == {"age": 1, "gender": 1, "site": 1}
    out = enc.transform(sheet)
    assert out.loc["b", "age"] == 50.0 and out.loc["e", "age"] == 70.0  # never zero-filled
    assert out.loc["c", "gender=2"] == 1.0 and out.loc["d", "site=b"] == 1.0
    bad = sheet.assign(age=["40", "x", "60", "50", "70"])
    with pytest.raises(ValueError, match="column 'age': subject 'b' has non-numeric value 'x'"):
        enc.transform(bad)


def _config(tmp_path: Path, **radiomics) -> dict:
    import yaml

    from workflow_helpers import REPO

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["models"] = []
    config["fusion"]["methods"] = []
    config["radiomics"] = {"activate": True, "variants": ["original"], "clinical": ["age"], **radiomics}
    return config


def test_config_checks_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="radiomics.modality: unknown modality 'pet'"):
        check_config(_config(tmp_path, modality="pet"))
    with pytest.raises(ConfigError, match="radiomics.settings.lower_bound"):
        check_config(_config(tmp_path, settings={"normalisation": "standardisation", "lower_bound": 0.0}))
    with pytest.raises(ConfigError, match="superres.checkpoint: .*missing.pt not found"):
        check_config({**_config(tmp_path, variants=["sr"]), "superres": {"checkpoint": str(tmp_path / "missing.pt")}})
    config = _config(tmp_path)
    config["radiomics"]["activate"] = False
    with pytest.raises(ConfigError, match="models is empty and radiomics.activate is false"):
        check_config(config)
    check_config(_config(tmp_path))  # radiomics only, no CNN: valid
    sheet = pd.DataFrame({"subject": ["a"], "tumor_mask": ["m.nii.gz"], "age": ["50"]})
    with pytest.raises(ConfigError, match="radiomics.clinical: sample sheet has no column 'bmi'"):
        check_radiomics_samples(_config(tmp_path, clinical=["bmi"]), sheet)


def test_model_names() -> None:
    assert radiomics_model_names(["original", "sr"], ["age"]) == [
        "radiomics_original", "radiomics_sr", "clinical", "combined_original", "combined_sr"]
    assert radiomics_model_names(["sr"], []) == ["radiomics_sr"]


@pytest.mark.parametrize("model", ["combined_original"])
def test_validation_predictions_are_cross_fitted_when_validation_patients_fit(model: str) -> None:
    """With fit_validation the threshold's patients (val) are in the fit: each one's own prediction
    must come from a model fitted without it, so its own label cannot move it."""
    features, sheet, splits = _cohort()
    fold = 1
    part = splits[splits["fold"] == fold]
    val = part.loc[part["role"] == "val", "subject"].tolist()
    preds, coefs = fit_fold(model, fold, splits, sheet, ["age", "gender"], SETTINGS, features)
    _, only_train = fit_fold(model, fold, splits, sheet, ["age", "gender"], SETTINGS, features, fit_validation=False)
    assert only_train["n_train"].iloc[0] == len(part) - len(val) - (part["role"] == "test").sum()
    by = preds.set_index("subject")["probability"]
    test = part.loc[part["role"] == "test", "subject"].tolist()
    for subject in val[:1]:
        sp = splits.copy()
        hit = (sp["fold"] == fold) & (sp["subject"] == subject)
        sp.loc[hit, "label"] = 1 - sp.loc[hit, "label"]
        p2, c2 = fit_fold(model, fold, sp, sheet, ["age", "gender"], SETTINGS, features)
        by2 = p2.set_index("subject")["probability"]
        assert by2.loc[subject] == pytest.approx(by.loc[subject], abs=1e-12)  # its own label never reached it
        assert not np.allclose(by2.loc[test], by.loc[test])  # the final fit did use that label


@pytest.mark.parametrize("model", ["radiomics_original", "clinical", "combined_original"])
def test_saved_model_reproduces_the_folds_test_predictions(model: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """model.json (the fold's fitted model as numbers) applied to the fold's test patients gives the
    probabilities of predictions.tsv (6 decimals, as written); a perturbed coefficient does not; a
    missing clinical column is named; a blank value gets the training fill; a category training never
    saw is named in the log."""
    from oncoflow.radiomics.models import fit_fold_model
    from oncoflow.radiomics.saved import (
        SavedModelError,
        apply_saved_model,
        check_saved_model,
        read_saved_model,
        write_saved_model,
    )

    features, sheet, splits = _cohort()
    fold = 2
    preds, _, saved = fit_fold_model(model, fold, splits, sheet, ["age", "gender"], SETTINGS, features)
    write_saved_model(saved, tmp_path / "model.json")
    preds.to_csv(tmp_path / "predictions.tsv", sep="\t", index=False, float_format="%.6f")
    saved = read_saved_model(tmp_path / "model.json")
    written = pd.read_csv(tmp_path / "predictions.tsv", sep="\t").set_index("subject")
    test = written.index[written["role"] == "test"].tolist()
    mine = apply_saved_model(saved, test, features, sheet)
    worst = float(np.max(np.abs(mine - written.loc[test, "probability"])))
    assert worst <= 5.1e-7, worst  # rounding to 6 decimals only
    print(f"\n{model}: reproduction error {worst:.2g} (predictions.tsv), "
          f"{float(np.max(np.abs(mine - preds.set_index('subject').loc[test, 'probability']))):.2g} (unrounded)")
    assert check_saved_model(saved, written.loc[test, "probability"], features, sheet, tolerance=2e-6) <= 5.1e-7

    block = saved["radscore"]["features"] if "radscore" in saved else None
    if block:
        block[0]["coefficient"] *= 1.01
    else:
        saved["clinical"]["coefficients"][0] *= 1.01
    with pytest.raises(SavedModelError, match=f"{model} fold {fold}: the saved model's probabilities differ"):
        check_saved_model(saved, written.loc[test, "probability"], features, sheet, tolerance=2e-6)

    if model != "radiomics_original":
        saved = read_saved_model(tmp_path / "model.json")
        with pytest.raises(SavedModelError, match="sample sheet has no column 'age'"):
            apply_saved_model(saved, test, features, sheet.drop(columns="age"))
        blank = sheet.copy()
        blank.loc[test[0], "age"] = ""
        median = saved["clinical"]["encoder"]["numeric"]["age"]
        filled = blank.copy()
        filled.loc[test[0], "age"] = str(median)
        assert apply_saved_model(saved, test, features, blank).equals(apply_saved_model(saved, test, features, filled))
        unseen = sheet.copy()
        unseen.loc[test[0], "gender"] = "X"
        apply_saved_model(saved, test, features, unseen)
        said = capsys.readouterr().err
        assert f"subject {test[0]!r}: gender = 'X' never occurred in training" in said, said
