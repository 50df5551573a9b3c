"""The pretrain_model rule in the real workflow: its jobs' inputs are exactly each fold's train +
val crops (dry run on the tiny demo cohort), and a pretrained, co-training model runs end to end
on top of the finished tiny run (slow)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from workflow_helpers import planned_jobs, run_snakemake, tiny_config, write_config

from oncoflow.train.folds import make_folds

MODEL = "t2_resnet18"


def pretrain_config() -> dict:
    """tiny_config() plus one pretrained, co-training model (fusion still uses the other two)."""
    config = tiny_config()
    config["pretrain"] = [{"name": "tumorseg", "task": "segmentation", "epochs": 1, "batch_size": 16}]
    config["models"].append({"architecture": "resnet18", "inputs": ["t2"], "init": "pretrained",
                             "pretrained": "tumorseg", "cotrain_segmentation": True, "epochs": 1,
                             "batch_size": 16, "patience": 0})
    return config


def expected_splits(sheet_path: Path, config: dict) -> pd.DataFrame:
    """splits.tsv as split_folds writes it."""
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    sheet["y"] = (sheet[config["study"]["label"]] == str(config["study"]["positive"])).astype(int)
    cv = config["cv"]
    return make_folds(sheet, label="y", folds=cv["folds"], seed=cv["seed"], val_fraction=cv["val_fraction"],
                      external_cohorts=tuple(config["cohort"]["external"]))


def dry_run_jobs(output: str, rule: str) -> list[dict[str, str]]:
    """input / wildcards of every job of ``rule`` in a dry run's listing. A group job's rules are
    indented (``    rule convert_dicom:``): each starts a block too, or its input would be read
    as the previous job's."""
    jobs = []
    for block in re.split(r"^\s*(?:local)?rule ", output, flags=re.M)[1:]:
        if not block.startswith(f"{rule}:"):
            continue
        fields = dict(re.findall(r"^\s+(input|output|wildcards): (.*)$", block, flags=re.M))
        jobs.append(fields)
    return jobs


def crop_subjects(inputs: str) -> set[str]:
    return set(re.findall(r"subjects/([^/]+)/crop/crop\.npz", inputs))


def test_pretrain_jobs_read_only_train_and_val_crops(tmp_path: Path, tiny_cohort: Path) -> None:
    shutil.copytree(tiny_cohort.parent, tmp_path / "data" / "demo")
    config = pretrain_config()
    write_config(tmp_path, config)
    targets = [f"results/demo/models/{MODEL}/fold{k}/predictions.tsv" for k in range(3)]
    result = run_snakemake(tmp_path, "-n", "--cores", "2", *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert jobs["pretrain_model"] == 3 and jobs["train_model"] == 3
    splits = expected_splits(tmp_path / "data/demo/samples.tsv", config)
    pretrain = dry_run_jobs(result.stdout, "pretrain_model")
    assert len(pretrain) == 3
    folds_seen = set()
    for job in pretrain:
        wildcards = dict(kv.split("=") for kv in job["wildcards"].split(", "))
        assert wildcards["pretrain"] == "tumorseg" and wildcards["model"] == MODEL
        fold = int(wildcards["fold"])
        folds_seen.add(fold)
        part = splits[splits["fold"] == fold]
        roles = dict(zip(part["subject"], part["role"]))
        given = crop_subjects(job["input"])
        assert given == {s for s, r in roles.items() if r in ("train", "val")}
        assert {roles[s] for s in given} == {"train", "val"}  # no test, no external patient
        assert "results/demo/folds/splits.tsv" in job["input"]
        assert job["output"].startswith(f"results/demo/pretrain/tumorseg/{MODEL}/fold{fold}/checkpoint.pt")
    assert folds_seen == {0, 1, 2}
    # each train_model job of the model reads its own fold's pretrained checkpoint (and all crops)
    for job in dry_run_jobs(result.stdout, "train_model"):
        fold = re.search(r"fold=(\d+)", job["wildcards"]).group(1)
        checkpoints = re.findall(r"results/demo/pretrain/[^,]+", job["input"])
        assert checkpoints == [f"results/demo/pretrain/tumorseg/{MODEL}/fold{fold}/checkpoint.pt"]
        assert len(crop_subjects(job["input"])) == 14


@pytest.mark.slow
def test_pretrained_cotraining_model_runs(finished_run: Path, tmp_path: Path) -> None:
    """On a copy of the finished tiny run (crops and splits up to date), fold 0 (the dry run above
    covers every fold's inputs): only the new model's pretraining and training run; the pretrain
    checkpoint saw exactly the fold's train + val patients of splits.tsv; train_model's outputs are
    the usual three files, and its log says that it started from that checkpoint."""
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)  # keeps modification times
    write_config(workdir, pretrain_config())
    targets = [f"results/demo/models/{MODEL}/fold0/predictions.tsv"]
    # the copy's sample sheet resolves to other absolute paths (a provenance trigger for the
    # front half); by modification times everything upstream is up to date
    args = ("--rerun-triggers", "mtime", "--cores", "2", *targets)
    dry = run_snakemake(workdir, "-n", *args)
    assert planned_jobs(dry.stdout) == {"pretrain_model": 1, "train_model": 1}, dry.stdout[-3000:]
    result = run_snakemake(workdir, *args)
    assert result.returncode == 0, result.stderr[-5000:]
    results = workdir / "results/demo"
    splits = pd.read_csv(results / "folds/splits.tsv", sep="\t")
    for fold in (0,):
        part = splits[splits["fold"] == fold]
        ckpt = torch.load(results / f"pretrain/tumorseg/{MODEL}/fold{fold}/checkpoint.pt", weights_only=True)
        assert set(ckpt["subjects"]) == set(part.loc[part["role"].isin(["train", "val"]), "subject"])
        assert not set(ckpt["subjects"]) & set(part.loc[part["role"].isin(["test", "external"]), "subject"])
        assert ckpt["task"] == "segmentation" and ckpt["fold"] == fold
        out = results / f"models/{MODEL}/fold{fold}"
        assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "history.tsv", "predictions.tsv"]
        preds = pd.read_csv(out / "predictions.tsv", sep="\t")
        assert sorted(preds["subject"]) == sorted(part["subject"])
        history = pd.read_csv(out / "history.tsv", sep="\t")
        assert {"cls_loss", "seg_loss", "seg_dice"} <= set(history.columns)
        log = (results / f"logs/train_model/{MODEL}_fold{fold}.log").read_text()
        assert f"backbone from results/demo/pretrain/tumorseg/{MODEL}/fold{fold}/checkpoint.pt" in log
        assert (results / f"logs/pretrain_model/tumorseg_{MODEL}_fold{fold}.log").exists()
        assert (results / f"benchmarks/pretrain_model/tumorseg_{MODEL}_fold{fold}.tsv").exists()


def head_cohort(workdir: Path, n: int = 3) -> Path:
    """A pretraining cohort sheet: n demo subjects under new IDs (head01...), tumor masks removed
    (as for normal heads), written next to the study's sheet."""
    sheet = pd.read_csv(workdir / "data/demo/samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    heads = sheet[sheet["cohort"] != "external"].head(n).copy()
    heads["subject"] = [f"head{i + 1:02d}" for i in range(n)]
    heads["cohort"] = "normal"
    heads["tumor_mask"] = heads["tumor_mask_space"] = ""
    path = workdir / "data/demo/heads.tsv"
    heads.drop(columns=[c for c in heads.columns if c == "label"]).to_csv(path, sep="\t", index=False)
    return path


def cohort_pretrain_config(heads: Path) -> dict:
    config = tiny_config()
    config["pretrain"] = [{"name": "heads", "source": "cohort", "samples": str(heads),
                           "task": "rotation", "epochs": 1, "batch_size": 16}]
    config["models"].append({"architecture": "resnet18", "inputs": ["t2"], "init": "pretrained",
                             "pretrained": "heads", "epochs": 1, "batch_size": 16, "patience": 0})
    return config


def test_cohort_pretraining_reads_only_that_cohort_and_serves_every_fold(tmp_path: Path, tiny_cohort: Path) -> None:
    """pretrain source: cohort: the other cohort's subjects go through the front half (a whole-brain
    crop without tumor mask), one pretraining reads exactly their crops, every fold's train_model
    starts from that one checkpoint; none of them enters the folds."""
    shutil.copytree(tiny_cohort.parent, tmp_path / "data" / "demo")
    heads = head_cohort(tmp_path)
    write_config(tmp_path, cohort_pretrain_config(heads))
    targets = [f"results/demo/models/{MODEL}/fold{k}/predictions.tsv" for k in range(3)]
    result = run_snakemake(tmp_path, "-n", "--cores", "2", *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert jobs["pretrain_model_on_cohort"] == 1 and "pretrain_model" not in jobs
    assert jobs["crop_brain"] == 3 and jobs["crop_tumor"] == 14 and jobs["train_model"] == 3
    (job,) = dry_run_jobs(result.stdout, "pretrain_model_on_cohort")
    assert crop_subjects(job["input"]) == {"head01", "head02", "head03"}
    assert "splits.tsv" not in job["input"]
    for job in dry_run_jobs(result.stdout, "train_model"):
        assert re.findall(r"results/demo/pretrain/[^,]+", job["input"]) == [
            f"results/demo/pretrain/heads/{MODEL}/cohort/checkpoint.pt"]
        assert not crop_subjects(job["input"]) & {"head01", "head02", "head03"}
    (split,) = dry_run_jobs(result.stdout, "split_folds")
    assert "head01" not in split["input"]


def test_cohort_sheet_errors_stop_before_any_job(tmp_path: Path, tiny_cohort: Path) -> None:
    shutil.copytree(tiny_cohort.parent, tmp_path / "data" / "demo")
    heads = head_cohort(tmp_path)
    sheet = pd.read_csv(heads, sep="\t", dtype=str, keep_default_na=False)
    config = cohort_pretrain_config(heads)
    config["pretrain"][0]["task"] = "segmentation"
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "-n", "--cores", "1")
    assert result.returncode != 0
    assert "subject 'head01' has no tumor mask, which pretrain[0] task 'segmentation' needs" in result.stdout + result.stderr
    sheet.loc[0, "subject"] = "demo001"
    sheet.to_csv(heads, sep="\t", index=False)
    write_config(tmp_path, cohort_pretrain_config(heads))
    result = run_snakemake(tmp_path, "-n", "--cores", "1")
    assert result.returncode != 0
    assert "'demo001' is also in the study's sample sheet (pretrain[0])" in result.stdout + result.stderr


@pytest.mark.slow
def test_cohort_pretrained_model_runs(finished_run: Path, tmp_path: Path) -> None:
    """On a copy of the finished tiny run, fold 0: the head cohort's front half, its rotation
    pretraining and the model's training run; the checkpoint saw exactly the head subjects."""
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    heads = head_cohort(workdir)
    write_config(workdir, cohort_pretrain_config(heads))
    targets = [f"results/demo/models/{MODEL}/fold0/predictions.tsv"]
    args = ("--rerun-triggers", "mtime", "--cores", "2", *targets)
    result = run_snakemake(workdir, *args)
    assert result.returncode == 0, result.stderr[-5000:]
    results = workdir / "results/demo"
    ckpt = torch.load(results / f"pretrain/heads/{MODEL}/cohort/checkpoint.pt", weights_only=True)
    assert ckpt["subjects"] == ["head01", "head02", "head03"] and ckpt["task"] == "rotation"
    with np.load(results / "subjects/head01/crop/crop.npz") as crop:
        assert crop["tumor"].sum() == 0 and crop["image_t2"].any()
    log = (results / f"logs/train_model/{MODEL}_fold0.log").read_text()
    assert f"backbone from results/demo/pretrain/heads/{MODEL}/cohort/checkpoint.pt" in log
    assert (results / f"benchmarks/pretrain_model_on_cohort/heads_{MODEL}.tsv").exists()
