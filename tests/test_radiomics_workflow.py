"""End to end: the radiomics branch alone (no CNN) through Snakemake, from the preprocessed images of
the shared finished tiny run (conftest.finished_run: 14 subjects from DICOM to coregistered images,
its folds, 2 external subjects) to the evaluation tables: rad-score, clinical and combined models in
the metrics, scored on the external subjects, DeLong comparisons and decision curves; features
byte-identical when extracted again. Super-resolution (features after the GAN, its quality table)
is the HCC study's end-to-end test (tests/test_studies.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from workflow_helpers import run_snakemake, tiny_config, write_config

MODELS = ["radiomics_original", "clinical", "combined_original"]


def radiomics_config() -> dict:
    config = tiny_config()
    config["models"] = []
    config["fusion"]["methods"] = []
    # the finished run's folds (3, val_fraction 0.34: >= 2 of each class in every training set)
    config["radiomics"] = {
        "activate": True, "modality": "t1ce", "variants": ["original"], "clinical": ["age", "sex"],
        "settings": {"bin_width": 50.0},
        "selection": {"inner_folds": 2, "c_grid": [0.1, 1.0]},
    }
    return config


@pytest.mark.slow
def test_radiomics_branch_end_to_end(finished_run: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "radiomics"  # the finished run's preprocessing config: only what radiomics adds runs
    shutil.copytree(finished_run, workdir, symlinks=True,  # keeps modification times
                    ignore=shutil.ignore_patterns("models", "archive", "bundle", "restored", "kept_*"))
    write_config(workdir, radiomics_config())
    results = workdir / "results" / "demo"
    targets = [f"results/demo/tables/{t}.tsv" for t in ("metrics", "comparisons")]
    targets += ["results/demo/figures/dca.tsv"]
    result = run_snakemake(workdir, "--cores", "2", *targets)
    assert result.returncode == 0, result.stderr[-5000:]
    ran = set(re.findall(r"rule (\w+):", result.stderr))
    assert "train_model" not in ran  # no CNN
    assert not ran & {"convert_dicom", "correct_bias", "register_modalities", "extract_brain"}, ran
    sheet = pd.read_csv(finished_run / "data" / "demo" / "samples.tsv", sep="\t")
    n = int((sheet["cohort"] == "train").sum())  # cross-validated; the 2 external subjects are scored apart

    metrics = pd.read_csv(results / "tables" / "metrics.tsv", sep="\t")
    cv = metrics[metrics["cohort"] == "cv"].set_index("model")
    assert set(MODELS) <= set(cv.index)
    assert cv.loc[MODELS, ["auc", "auc_ci_low", "auc_ci_high"]].notna().all().all()
    pairs = pd.read_csv(results / "tables" / "comparisons_exploratory.tsv", sep="\t")
    assert {frozenset(p) for p in zip(pairs["model_a"], pairs["model_b"])} >= {
        frozenset(("radiomics_original", "combined_original")), frozenset(("radiomics_original", "clinical"))}
    assert set(MODELS) <= set(pd.read_csv(results / "figures" / "dca.tsv", sep="\t")["model"])

    for model in MODELS:
        preds = pd.read_csv(results / "models" / model / "fold0" / "predictions.tsv", sep="\t")
        assert list(preds.columns) == ["subject", "fold", "model", "role", "y_true", "probability"]
        assert set(preds["role"]) == {"train", "val", "test", "external"} and len(preds) == len(sheet)
        assert (preds["role"] == "external").sum() == len(sheet) - n  # each fold's model scores them
        coefs = pd.read_csv(results / "models" / model / "fold0" / "coefficients.tsv", sep="\t")
        # radiomics.fit_validation (default): fitted on the fold's train + inner-validation patients
        assert (coefs["n_train"] == preds["role"].isin(["train", "val"]).sum()).all()

    settings = json.loads((results / "radiomics" / "original" / "settings.json").read_text())
    assert settings["library"] == "mirp" and settings["bin_width"] == 50.0 and settings["subjects"] == len(sheet)

    # Extracted again from scratch: the same bytes.
    features = results / "radiomics" / "original" / "features.tsv"
    first = features.read_bytes()
    # the target first: --forcerun takes every argument after it
    again = run_snakemake(workdir, str(features.relative_to(workdir)), "--cores", "1", "--forcerun",
                          "extract_radiomics")
    assert again.returncode == 0, again.stderr[-3000:]
    assert features.read_bytes() == first
