"""After the paper (#17): `snakemake bundle` on the finished demo run, then `oncoflow predict` on 6 new
synthetic subjects (a new seed) in an empty folder: predictions for every model, no training job,
the new cohort's AUC beside the CV AUC, and an input prepared differently refused."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import planned_jobs, run_snakemake

from oncoflow.demo import make_demo_cohort
from oncoflow.metrics.recalibration import apply_recalibration
from oncoflow.predict.bundle import apply_stacker
from oncoflow.predict.manifest import PreparationMismatch, check_preparation, preparation, preparation_mismatches
from oncoflow.report.archive import MANIFEST, write_archive

# Jobs that fit or train something: none may run in a predict run.
TRAINING_RULES = ("train_model", "pretrain_model", "pretrain_model_on_cohort", "fit_baseline_model",
                  "fit_radiomics_model", "fuse_predictions", "split_folds", "train_superres", "evaluate_models")


def oncoflow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oncoflow.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)


NEW = 6  # new subjects for predict: both classes among the scored ones (28 CPU s each, deepbet incl.)


@pytest.mark.slow
def test_bundle_then_predict_new_subjects_in_an_empty_folder(finished_run: Path, tmp_path: Path) -> None:
    results = finished_run / "results" / "demo"
    start = time.perf_counter()
    made = run_snakemake(finished_run, "--cores", "2", "bundle")
    assert made.returncode == 0, made.stderr[-4000:]
    bundle_s = time.perf_counter() - start
    try:
        tar = results / "bundle" / "demo.tar.gz"
        user = tmp_path / "elsewhere"  # another machine: the bundle and new exams, no results, no training data
        user.mkdir()
        sheet = make_demo_cohort(tmp_path / "site_b", NEW, seed=11, voxel_scale=2.0, external_fraction=0.0)
        rows = pd.read_csv(sheet, sep="\t", dtype=str)
        rows["cohort"] = "site_b"
        bad = rows.iloc[:1].assign(subject="gone01", dicom="dicom/gone01")  # a folder that does not exist
        pd.concat([rows, bad]).to_csv(sheet, sep="\t", index=False)

        # the bundle's identity, recorded beside it, is what predict expects (the paper quotes it)
        digest = (results / "bundle" / "demo.tar.gz.sha256").read_text().split()[0]
        start = time.perf_counter()
        done = oncoflow(user, "predict", str(tar), str(sheet), "--cores", "2", "--keep-going",
                        "--expect-sha256", digest)
        predict_s = time.perf_counter() - start
        assert done.returncode == 0, done.stderr[-5000:]
        out = user / "results" / "demo" / "predict" / "site_b"
        # the bad row is listed (header + the new subjects before it), the good subjects scored
        refused_rows = pd.read_csv(out / "refused.tsv", sep="\t")
        assert refused_rows["line"].tolist() == [NEW + 2] and "subject 'gone01'" in refused_rows.at[0, "reason"]
        assert "refused (--keep-going)" in done.stderr
        bundle = out / "bundle" / "demo"
        manifest = json.loads((bundle / "bundle.json").read_text())
        models = list(manifest["models"])
        # every model the study evaluated: the CNNs, both fusions, the baseline
        assert set(models) == set(pd.read_csv(results / "tables" / "metrics.tsv", sep="\t")["model"])
        # the bundle's threshold and map per model and fold are those evaluation used: applied to the
        # fold's test and external probabilities, the map gives evaluation's risk (prior_shift, none, logistic)
        calibration = pd.read_csv(bundle / "calibration.tsv", sep="\t")
        assert {"prior_shift", "none", "logistic"} <= set(calibration["recal_method"])
        evaluated = pd.read_csv(results / "tables" / "predictions.tsv", sep="\t", dtype={"subject": str})
        scored_rows = evaluated[evaluated["role"].isin(["test", "external"])]
        tested = scored_rows.merge(calibration, on=["model", "fold"], suffixes=("", "_bundle"), validate="m:1")
        assert len(tested) == len(scored_rows) and set(tested["model"]) == set(models)
        np.testing.assert_allclose(tested["threshold_bundle"], tested["threshold"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(apply_recalibration(tested["probability"].to_numpy(), tested["recal_a"].to_numpy(),
                                                       tested["recal_b"].to_numpy()), tested["risk"], rtol=0, atol=1e-8)

        preds = pd.read_csv(out / "predictions.tsv", sep="\t", dtype={"subject": str})
        assert len(preds) == NEW * len(models) and set(preds["model"]) == set(models)
        qc = pd.read_csv(out / "qc" / "qc.tsv", sep="\t", dtype={"subject": str}, keep_default_na=False)
        flagged = set(qc.loc[qc["flag"] != "", "subject"])
        scored = preds[preds["status"] == "scored"]
        assert set(preds.loc[preds["status"] != "scored", "subject"]) == flagged  # flagged: listed, unscored
        assert scored["probability"].between(0, 1).all() and scored["risk"].between(0, 1).all()
        assert (scored["folds"] == len(manifest["folds"])).all() and (scored["probability_sd"] >= 0).all()
        assert set(scored["predicted_positive"]) <= {0, 1}
        assert preds.loc[preds["status"] != "scored", "probability"].isna().all()
        # prediction sets (#25) for the model whose validation patients selected nothing: the baseline
        has_set = scored["prediction_set"].fillna("") != ""
        assert (has_set == (scored["model"] == "baseline")).all()
        assert set(scored.loc[has_set, "prediction_set"]) <= {"negative", "positive", "uncertain", "empty"}
        assert_maps_of_the_scored_subjects(out, bundle, manifest, scored, flagged)
        assert_cotrained_models_write_their_masks(out, bundle, manifest, scored, tmp_path)

        # no training job ran: none planned, none benchmarked, no model folder written
        benchmarked = {p.name for p in (out / "benchmarks").iterdir()}
        assert not benchmarked & set(TRAINING_RULES), benchmarked
        assert {"predict_new_subjects", "evaluate_new_subjects", "crop_tumor"} <= benchmarked
        assert not list(user.rglob("checkpoint.pt")) and not (out / "models").exists()

        # the new subjects' AUC, beside the study's cross-validated AUC
        metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
        cv = pd.read_csv(results / "tables" / "metrics.tsv", sep="\t").query("cohort == 'cv'").set_index("model")
        assert set(metrics["model"]) == set(models) and set(metrics["cohort"]) == {"site_b"}
        for _, row in metrics.iterrows():
            assert row["cv_auc"] == pytest.approx(cv.loc[row["model"], "auc"], abs=1e-4)
            assert row["n_scored"] == NEW - len(flagged)
        assert metrics["auc"].notna().all()
        per_subject = predict_s / NEW
        print(f"\nbundle {bundle_s:.1f} s ({tar.stat().st_size / 1e6:.0f} MB); predict {NEW} subjects {predict_s:.1f} s "
              f"({per_subject:.1f} s/subject); QC flagged {sorted(flagged)}")
        print(metrics[["model", "n_scored", "auc", "auc_ci_low", "auc_ci_high", "cv_auc"]].to_string(index=False))

        # one new subject alone, given another patient's T2 (its raw NIfTIs, the T2 of the next subject):
        # before (#29) the cohort checks needed 5 subjects of the sheet and were skipped without a word
        first, second = rows["subject"].iloc[0], rows["subject"].iloc[1]
        images = tmp_path / "swapped" / first
        images.mkdir(parents=True)
        for modality in ("t1", "t1ce", "t2", "flair"):
            source = out / "subjects" / (second if modality == "t2" else first) / "raw" / f"{modality}.nii.gz"
            shutil.copy(source, images / f"{modality}.nii.gz")
        one = rows.iloc[:1].drop(columns="dicom").assign(nifti=str(images),
                                                         tumor_mask=str(sheet.parent / rows["tumor_mask"].iloc[0]))
        one_sheet = tmp_path / "swapped" / "one.tsv"
        one.to_csv(one_sheet, sep="\t", index=False)
        # (explain.activate false: no maps, as the study's key says; ~10 s less)
        alone = oncoflow(user, "predict", str(tar), str(one_sheet), "--cores", "2", "--set", "explain.activate=false")
        assert alone.returncode == 0, alone.stderr[-5000:]
        assert not (user / "results/demo/predict/one/maps.tsv").exists()
        qc_one = pd.read_csv(user / "results/demo/predict/one/qc/qc.tsv", sep="\t", keep_default_na=False)
        print(f"one subject with another patient's T2: {qc_one.at[0, 'flag']!r} ({qc_one.at[0, 'cohort_check']})")
        assert qc_one.at[0, "cohort_check"].startswith("against the training cohort (")
        assert "t2: " in qc_one.at[0, "flag"], qc_one.iloc[0].to_dict()

        # a checkpoint carries what applying it needs
        import torch

        model = next(m for m, s in manifest["models"].items() if s["kind"] == "cnn")
        stamp = torch.load(bundle / "checkpoints" / model / "fold0.pt", weights_only=True)["oncoflow"]
        assert stamp["modalities"] == manifest["models"][model]["modalities"]
        assert stamp["preparation"]["crop"]["size"] == 32 and stamp["software"]["torch"]
        assert stamp["config_sha256"] == manifest["config_sha256"]

        # input prepared differently (crops of 48 pixels): refused before anything runs, naming the setting;
        # a setting that does not shape the input is accepted (dry run: nothing to train, only applying)
        refused = oncoflow(user, "predict", str(tar), str(sheet), "--name", "bigger", "--set", "crop.size=48")
        assert refused.returncode == 2
        assert "crop.size: trained on 32, this input 48" in refused.stderr, refused.stderr[-3000:]
        assert not (user / "results" / "demo" / "predict" / "bigger").exists()
        plan = oncoflow(user, "predict", str(tar), str(sheet), "--keep-going", "--set", "evaluate.ci_method=bootstrap", "--",
                        "--dry-run")
        assert plan.returncode == 0, plan.stderr[-3000:]
        assert planned_jobs(plan.stdout + plan.stderr) == {"evaluate_new_subjects": 1, "all": 1}

        # one weight changed by 5e-7 and MANIFEST.sha256 recomputed: the bundle checks out inside,
        # but not against the digest the study recorded
        edited = tmp_path / "edited"
        with tarfile.open(tar) as archive:
            archive.extractall(edited, filter="data")
        checkpoint = edited / "demo" / "checkpoints" / model / "fold0.pt"
        state = torch.load(checkpoint, weights_only=True)
        weights = next(v for v in state["model"].values() if v.is_floating_point() and v.numel() > 1)
        weights.view(-1)[0] += 5e-7
        torch.save(state, checkpoint)
        files = {p.relative_to(edited / "demo").as_posix(): p for p in (edited / "demo").rglob("*")
                 if p.is_file() and p.name != MANIFEST}
        forged = tmp_path / "forged" / "demo.tar.gz"
        write_archive(forged, files, root="demo", compresslevel=0)
        with tarfile.open(forged) as packed:  # consistent inside: the manifest lists the changed checkpoint
            listed = packed.extractfile(f"demo/{MANIFEST}").read().decode()
        changed = checkpoint.relative_to(edited / "demo").as_posix()
        assert f"{hashlib.sha256(checkpoint.read_bytes()).hexdigest()}  {changed}" in listed
        caught = oncoflow(user, "predict", str(forged), str(sheet), "--name", "forged", "--expect-sha256", digest)
        assert caught.returncode == 2 and f"is not the expected {digest}" in caught.stderr, caught.stderr[-2000:]
        assert not (user / "results" / "demo" / "predict" / "forged").exists()
    finally:
        shutil.rmtree(results / "bundle", ignore_errors=True)


def test_preparation_mismatch_names_every_setting() -> None:
    config = {"ingest": {"modalities": {"t1": ["t1"], "flair": ["flair"]}},
              "preprocess": {"reference": "t1", "n4": {"activate": True}}, "crop": {"size": 32, "slices": 3}}
    other = json.loads(json.dumps(config))
    other["preprocess"]["n4"]["activate"] = False
    other["ingest"]["modalities"].pop("flair")
    check_preparation(preparation(config), preparation(config), "same")
    problems = preparation_mismatches(preparation(config), preparation(other))
    assert "preprocess.n4.activate: trained on True, this input False" in problems
    assert any(p.startswith("modalities:") for p in problems)
    with pytest.raises(PreparationMismatch, match="ingest.modalities.flair"):
        check_preparation(preparation(config), preparation(other), "bundle")


@pytest.mark.parametrize("n", [30, 8])  # svm: cross-validated Platt sigmoid (30), in-sample (8: 2-3 per class)
def test_exported_stackers_reproduce_scikit_learn(n: int) -> None:
    """lr and svm stackers as numbers give the fitted models' probabilities (oncoflow.fusion.late)."""
    from oncoflow.predict.bundle import stacker_params

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)]
    roles = np.where(np.arange(n) % 3 == 0, "test", "val")
    frames = [pd.DataFrame({"subject": [f"s{i}" for i in range(n)], "fold": 0, "model": m, "role": roles,
                            "y_true": y, "probability": np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, n), 0.01, 0.99)})
              for m in ("a", "b")]
    from oncoflow.fusion.late import fuse

    for method in ("lr", "svm"):
        params = stacker_params(method, frames, seed=1)
        fused = fuse(frames, method, seed=1).set_index("subject")
        test = roles == "test"
        mine = apply_stacker(params, np.column_stack([f["probability"].to_numpy() for f in frames])[test])
        np.testing.assert_allclose(mine, fused.loc[[f"s{i}" for i in np.flatnonzero(test)], "probability"], atol=1e-9)


def test_flagged_and_maskless_subjects_are_listed_not_scored() -> None:
    from oncoflow.predict.apply import predictions_table

    samples = pd.DataFrame({"subject": ["a", "b", "c"], "cohort": "site_b", "y": [1, 0, np.nan],
                            "tumor_mask": ["a.nii.gz", "b.nii.gz", ""]}).set_index("subject", drop=False)
    qc = pd.DataFrame({"subject": ["a", "b", "c"], "flag": ["", "brain mask is empty", ""]})
    scores = pd.DataFrame({"subject": ["a", "b"], "model": "m", "probability": [0.7, 0.2], "probability_sd": 0.1,
                           "threshold": 0.5, "risk": [0.6, 0.3], "folds": 3})
    table = predictions_table(scores, samples, qc, ["m"], {"radiomics_original": "not bundled"})
    assert (table.loc[table["model"] == "radiomics_original", "status"] == "not applied: not bundled").all()
    table = table[table["model"] == "m"].set_index("subject")
    assert table.loc["a", "status"] == "scored" and table.loc["a", "predicted_positive"] == 1
    assert table.loc["b", "status"] == "not scored: QC flagged (brain mask is empty)"
    assert np.isnan(table.loc["b", "probability"])  # scored by the models, but not reported as a score
    assert table.loc["c", "status"] == "not scored: no tumor mask in the sample sheet (and no segmenter in the bundle)"
    assert table.loc["a", "tumor_mask"] == "manual"
    # with the bundle's segmenters: c scored from its predicted masks (CNN "m"), not by the
    # feature-based baseline; d's masks implausible (the reason, never a score)
    samples = pd.concat([samples, samples.loc[["c"]].assign(subject="d").set_index("subject", drop=False)])
    qc = pd.concat([qc, pd.DataFrame({"subject": ["d"], "flag": [""]})])
    scores = pd.concat([scores, scores.iloc[:1].assign(subject="c"), scores.iloc[:1].assign(subject="d")])
    why = "not scored: predicted tumor mask empty/implausible (fold 1: empty)"
    table = predictions_table(scores, samples, qc, ["m", "baseline"], masks={"c": "", "d": why}).set_index(["subject", "model"])
    assert table.loc[("c", "m"), "status"] == "scored" and table.loc[("c", "m"), "tumor_mask"] == "predicted"
    assert table.loc[("c", "baseline"), "status"].startswith("not scored: baseline reads features of a manual")
    assert table.loc[("d", "m"), "status"] == why and np.isnan(table.loc[("d", "m"), "probability"])
    # whole-brain crops need no mask: c is scored, its row says no mask was used
    table = predictions_table(scores, samples, qc, ["m"], brain_crops=True).set_index("subject")
    assert table.loc["c", "status"] == "scored" and table.loc["c", "tumor_mask"] == "none"


def test_each_new_cohort_gets_its_own_metrics_rows() -> None:
    from oncoflow.metrics.roc import auc
    from oncoflow.predict.apply import new_cohort_metrics

    rng = np.random.default_rng(3)
    y = np.tile([1, 0], 10)
    preds = pd.DataFrame({"subject": [f"s{i}" for i in range(20)], "cohort": ["a"] * 12 + ["b"] * 8, "model": "m",
                          "status": "scored", "y_true": y, "probability": np.clip(0.5 + 0.2 * (y - 0.5)
                                                                                  + rng.normal(0, 0.2, 20), 0, 1),
                          "threshold": 0.5})
    preds["predicted_positive"] = (preds["probability"] >= 0.5).astype(int)
    cv = pd.DataFrame({"model": ["m", "m"], "cohort": ["cv", "external"], "auc": [0.7, 0.6],
                       "auc_ci_low": [0.5, 0.4], "auc_ci_high": [0.9, 0.8]})
    metrics = new_cohort_metrics(preds, cv).set_index("cohort")
    assert list(metrics.index) == ["a", "b"] and (metrics["cv_auc"] == 0.7).all()
    for cohort, part in preds.groupby("cohort"):
        assert metrics.loc[cohort, "auc"] == pytest.approx(auc(part["y_true"], part["probability"]))
        assert metrics.loc[cohort, "auc_ci_low"] <= metrics.loc[cohort, "auc"] <= metrics.loc[cohort, "auc_ci_high"]


def test_radiomics_features_extracted_differently_are_refused() -> None:
    """The new subjects' features must come from the training extraction (settings, MIRP version,
    modality, x2 grid): each difference is named."""
    from oncoflow.predict.apply import check_extraction

    trained = {"variant": "sr", "modality": "arterial", "library": "mirp", "version": "2.5.0", "bin_number": 32,
               "superres": {"axes": ["z"], "factor": 2}}
    manifest = {"radiomics_extraction": {"sr": trained}}
    check_extraction(manifest, {"sr": dict(trained)})
    newer = {**trained, "version": "2.6.0", "superres": {"axes": ["z"], "factor": 3}}
    with pytest.raises(PreparationMismatch, match=r"radiomics features \(sr\).*superres.factor: trained on 2, "
                                                  r"this input 3; version: trained on '2.5.0', this input '2.6.0'"):
        check_extraction(manifest, {"sr": newer})
    with pytest.raises(PreparationMismatch, match="variant 'interp': the bundle has no record"):
        check_extraction(manifest, {"interp": trained})


def _fold_predictions(rng: np.random.Generator, models: list[str], folds: int = 3) -> pd.DataFrame:
    """Per model and fold: 40 imbalanced training, 30 validation and 20 test patients whose
    probabilities are over-confident (logit x 2.5), so every method gives a different map."""
    rows = []
    for k in range(folds):
        for role, n, prevalence in (("train", 40, 0.25), ("val", 30, 0.3), ("test", 20, 0.3)):
            y = (rng.random(n) < prevalence).astype(int)
            logit = 2.5 * (rng.normal(size=n) + 1.2 * y - 0.8)
            for model in models:
                p = 1.0 / (1.0 + np.exp(-(logit + rng.normal(scale=0.3, size=n))))
                rows.append(pd.DataFrame({"subject": [f"s{k}{role}{i}" for i in range(n)], "fold": k, "model": model,
                                          "role": role, "y_true": y, "probability": p}))
    return pd.concat(rows, ignore_index=True)


def test_bundle_stores_the_map_and_threshold_evaluation_used() -> None:
    """calibration.tsv's method, map (a, b) and threshold per model and fold are evaluation's: applied
    to the fold's test probabilities, the map gives evaluation's risk, for each recalibration method."""
    from oncoflow.metrics.evaluate import pool_predictions
    from oncoflow.predict.bundle import fold_calibration

    methods = {"cnn": "prior_shift", "stacker": "none", "baseline": "logistic"}
    preds = _fold_predictions(np.random.default_rng(4), list(methods))
    pooled = pool_predictions(preds, "youden", recalibration=methods)
    table = fold_calibration(preds, "youden", None, methods)
    assert dict(zip(table["model"], table["recal_method"])) == methods
    test = pooled[pooled["role"] == "test"].merge(table, on=["model", "fold"], suffixes=("", "_bundle"))
    assert len(test) == len(pooled[pooled["role"] == "test"])
    np.testing.assert_allclose(test["threshold_bundle"], test["threshold"], rtol=0, atol=1e-12)
    risk = apply_recalibration(test["probability"].to_numpy(), test["recal_a"].to_numpy(), test["recal_b"].to_numpy())
    for model in methods:
        mine = (test["model"] == model).to_numpy()
        np.testing.assert_allclose(risk[mine], test.loc[mine, "risk"], rtol=0, atol=1e-9, err_msg=model)


def assert_maps_of_the_scored_subjects(out: Path, bundle: Path, manifest: dict, scored: pd.DataFrame,
                                       flagged: set[str]) -> None:
    """predict's explanation maps (#25): per bundled CNN model and scored subject, the mean of the fold
    models' maps of the class predict reports, on the crop grid and on the subject's reference grid,
    mostly inside the brain, different between models; QC-flagged subjects listed without maps; the
    study's randomisation verdict carried. A subject scored from predicted masks (here: every fold's
    crop is its manual crop) gets per-fold maps whose mean on the reference grid is the same map."""
    import nibabel as nib

    from oncoflow.explain.maps import explain
    from oncoflow.explain.outputs import crop_grid_map
    from oncoflow.explain.sanity import load_fold_model, model_samples
    from oncoflow.predict.maps import new_subject_maps
    from oncoflow.report.explanations import model_check_text

    maps = pd.read_csv(out / "maps.tsv", sep="\t", dtype={"subject": str}, keep_default_na=False)
    cnns = [m for m, s in manifest["models"].items() if s["kind"] == "cnn"]
    methods = manifest["config"]["explain"]["methods"]
    assert len(maps) == NEW * len(cnns) * len(methods) and set(maps["model"]) == set(cnns)
    unmapped = maps[maps["status"] != "written"]
    assert set(unmapped["subject"]) == flagged and unmapped["status"].str.startswith("no map: not scored: QC").all()
    written = maps[maps["status"] == "written"].merge(scored[["subject", "model", "predicted_positive"]],
                                                       on=["subject", "model"], validate="m:1")
    assert len(written) == (NEW - len(flagged)) * len(cnns) * len(methods)
    assert (written["explained_class"] == written["predicted_positive"].map({0: "negative", 1: "positive"})).all()
    assert (written["folds"] == len(manifest["folds"])).all()
    card = json.loads((bundle / "reports" / "model_card.json").read_text())["explanation_checks"]
    names = {"gradcam": "Grad-CAM", "occlusion": "occlusion sensitivity"}
    verdicts = {(r["model"], r["method"]): model_check_text(r) for r in card}
    assert len(verdicts) == len(cnns) * len(methods)
    assert [verdicts[(r.model, names[r.method])] for r in written.itertuples()] == written["study_check"].tolist()
    inside = []
    for r in written.itertuples():
        reference = nib.load(out / "subjects" / r.subject / "brain" / "brain_mask.nii.gz")
        on_ref = nib.load(out / "maps" / r.reference_map)
        assert on_ref.shape == reference.shape and np.allclose(on_ref.affine, reference.affine), r.reference_map
        values = np.asarray(on_ref.dataobj)
        inside.append(float(values[np.asarray(reference.dataobj) > 0].sum() / values.sum()))
        assert (out / "maps" / r.overlay).stat().st_size > 0
    assert min(inside) > 0.75, sorted(inside)[:5]  # measured: 0.84 at least, median 1.0
    first = written["subject"].iloc[0]
    one = written[(written["subject"] == first) & (written["method"] == "occlusion")]
    by_model = [np.asarray(nib.load(out / "maps" / p).dataobj) for p in one["reference_map"]]
    assert len(by_model) == len(cnns) and not np.allclose(by_model[0], by_model[1])

    # the crop-grid map is the mean of the fold models' Grad-CAM maps of the reported class
    row = written[(written["subject"] == first) & (written["method"] == "gradcam")].iloc[0]
    crop_path = out / "subjects" / first / "crop" / "crop.npz"
    crop = manifest["config"]["crop"]
    folds = []
    for k in manifest["folds"]:
        fold_model = load_fold_model(bundle / "checkpoints" / row["model"] / f"fold{k}.pt")
        samples = model_samples(fold_model, {first: crop_path}, crop)
        m, _ = explain(fold_model.model, fold_model.architecture, samples.x, "gradcam",
                       target=int(row["predicted_positive"]))
        folds.append(crop_grid_map(m, crop_path, fold_model.architecture, 2, int(crop["slices"])))
    on_crop = np.asarray(nib.load(out / "maps" / row["crop_map"]).dataobj).transpose(2, 0, 1)
    np.testing.assert_allclose(on_crop, np.mean(folds, axis=0), rtol=1e-4, atol=1e-7)
    assert not np.allclose(folds[0], folds[1])

    # scored fold by fold (predicted masks): each fold's map on its crop, their mean on the reference grid
    per_fold = out / "maps_per_fold"
    table = new_subject_maps(bundle, scored[(scored["subject"] == first) & (scored["model"] == row["model"])], {},
                             {int(k): {first: crop_path} for k in manifest["folds"]}, crop, ["gradcam"], per_fold)
    assert table["crop_map"].iloc[0].count("fold") == len(manifest["folds"])
    mean = np.asarray(nib.load(per_fold / table["reference_map"].iloc[0]).dataobj)
    np.testing.assert_allclose(mean, np.asarray(nib.load(out / "maps" / row["reference_map"]).dataobj),
                               rtol=1e-4, atol=1e-7)


def assert_cotrained_models_write_their_masks(out: Path, bundle: Path, manifest: dict, scored: pd.DataFrame,
                                              tmp_path: Path) -> None:
    """A co-trained model's own tumor mask of each scored subject (#26): the mean over fold models of
    the segmentation head's probability, thresholded at 0.5, on the crop grid and on the reference
    grid. The demo co-trains no model: one model's fold classifiers get a segmentation head (drawn
    with the fold's seed, its last bias shifted so that each fold's probability crosses 0.5 at its
    median on the first subject: masks neither empty nor full), in a bundle folder of that model alone."""
    import nibabel as nib
    import torch

    from oncoflow.explain.outputs import crop_grid_map, reference_grid_map
    from oncoflow.explain.sanity import model_samples
    from oncoflow.models.ensemble import network_from_checkpoint
    from oncoflow.models.segmentation import CoTrainNet
    from oncoflow.predict.tumor_masks import new_subject_tumor_masks

    name = next(m for m, s in manifest["models"].items() if s["kind"] == "cnn")
    cotrained = tmp_path / "cotrained"
    (cotrained / "checkpoints" / name).mkdir(parents=True)
    (cotrained / "bundle.json").write_text(json.dumps(
        {**manifest, "models": {name: {**manifest["models"][name], "cotrain_segmentation": True}}}))
    rows = scored[scored["model"] == name]
    first = rows["subject"].iloc[0]
    crops = {s: out / "subjects" / s / "crop" / "crop.npz" for s in rows["subject"]}
    crop = manifest["config"]["crop"]
    probabilities = []
    for k in manifest["folds"]:
        ckpt = torch.load(bundle / "checkpoints" / name / f"fold{k}.pt", weights_only=True)
        torch.manual_seed(k)
        net = CoTrainNet(network_from_checkpoint(ckpt, name), ckpt["architecture"]).eval()
        samples = model_samples(SimpleNamespace(modalities=ckpt["modalities"], architecture=ckpt["architecture"]),
                                {first: crops[first]}, crop)
        with torch.no_grad():
            logits = net.forward_with_segmentation(torch.from_numpy(samples.x))[1]
            net.seg_head.scores[0].bias -= logits.median()
            prob = torch.sigmoid(net.forward_with_segmentation(torch.from_numpy(samples.x))[1])[:, 0].numpy()
        probabilities.append(crop_grid_map(prob, crops[first], ckpt["architecture"], 2, int(crop["slices"])))
        torch.save({**ckpt, "model": net.state_dict(), "cotrain_segmentation": True},
                   cotrained / "checkpoints" / name / f"fold{k}.pt")
    table = new_subject_tumor_masks(cotrained, rows, crops, {}, crop, tmp_path / "tumor_masks").set_index("subject")
    assert (table["status"] == "written").all() and len(table) == len(rows)
    mean = np.mean(probabilities, axis=0)
    on_crop = np.asarray(nib.load(tmp_path / "tumor_masks" / table.at[first, "crop_mask"]).dataobj).transpose(2, 0, 1)
    np.testing.assert_array_equal(on_crop, (mean >= 0.5).astype(np.float32))
    assert 0 < on_crop.sum() < (mean > 0).sum()  # neither empty nor the whole of the slices read
    reference = nib.load(out / "subjects" / first / "brain" / "brain_mask.nii.gz")
    on_ref = nib.load(tmp_path / "tumor_masks" / table.at[first, "reference_mask"])
    assert on_ref.shape == reference.shape and np.allclose(on_ref.affine, reference.affine)
    expected = np.asarray(reference_grid_map(mean, crops[first]).dataobj) >= 0.5
    np.testing.assert_array_equal(np.asarray(on_ref.dataobj).astype(bool), expected)
    voxel_ml = abs(np.linalg.det(reference.affine[:3, :3])) / 1000
    assert table.at[first, "volume_ml"] == pytest.approx(expected.sum() * voxel_ml)
