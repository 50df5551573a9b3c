"""Reruns and reproducibility, on the shared finished tiny run (conftest.finished_run).

- A config change reruns exactly the jobs it affects (dry runs; tests/test_workflow.py already
  covers the training epochs and the registration transform).
- Retraining from the same crops and re-evaluating gives byte-identical tables on CPU.
- A run killed (SIGKILL, whole process group) during training, unlocked and restarted with
  --rerun-incomplete, ends with the same tables as the uninterrupted run.
Every test leaves the run finished, with its original config and bytes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from collections.abc import Callable

import pytest
from workflow_helpers import SNAKEMAKE, REPO, changed_config, planned_jobs, run_snakemake, tiny_config

pytestmark = pytest.mark.slow

RESULTS = Path("results/demo")
PREPROCESS = {"convert_dicom", "correct_bias", "register_modalities", "extract_brain", "crop_tumor"}


def edit(path: str, value) -> Callable[[dict], None]:
    """A config edit: set the dotted ``path`` (list items by index) to ``value``, or call
    ``value(parent, key)``."""

    def apply(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if callable(value):
            value(node, last)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


# change -> (edit, the rules that read the value, checks on the planned jobs). On 14 subjects, 3
# models x 3 folds, 2 fusion methods.
CHANGES = {
    "lr (training hyper-parameter)": (
        edit("models.0.lr", 0.002), ["train_model"],
        lambda jobs: jobs["train_model"] == 9 and not PREPROCESS & set(jobs) and "split_folds" not in jobs),
    "slices per patient (read at training time, not cropping)": (
        edit("crop.slices", 2), ["train_model"],
        lambda jobs: jobs["train_model"] == 9 and "crop_tumor" not in jobs),
    "a model on one more modality": (
        edit("models.0.inputs", lambda node, key: node[key].append("t2")),
        [str(RESULTS / f"models/t2_resnet18/fold{k}/checkpoint.pt") for k in range(3)],
        lambda jobs: jobs["train_model"] == 3 and "fuse_predictions" not in jobs),
    "one modality fewer to ingest": (
        edit("ingest.modalities", lambda node, key: node[key].pop("t1")), ["convert_dicom"],
        lambda jobs: jobs["convert_dicom"] == 14 and jobs["crop_tumor"] == 14 and "split_folds" not in jobs),
    "fold count": (
        edit("cv.folds", 4), ["split_folds"],
        lambda jobs: jobs["train_model"] == 12 and jobs["fuse_predictions"] == 8 and not PREPROCESS & set(jobs)),
    "N4 shrink factor (preprocessing)": (
        edit("preprocess.n4.shrink_factor", 2), ["correct_bias"],
        lambda jobs: jobs["correct_bias"] == 14 and "convert_dicom" not in jobs and jobs["train_model"] == 9),
    "crop size": (
        edit("crop.size", 40), ["crop_tumor"],
        lambda jobs: jobs["crop_tumor"] == 14 and "extract_brain" not in jobs),
    "one more fusion method": (
        edit("fusion.methods", lambda node, key: node[key].append("svm")),
        [str(RESULTS / f"models/fusion_svm/fold{k}/predictions.tsv") for k in range(3)],
        lambda jobs: jobs["fuse_predictions"] == 3 and "train_model" not in jobs),
    "confidence-interval method": (
        edit("evaluate.ci_method", "bootstrap"), ["evaluate_models"],
        lambda jobs: "evaluate_models" in jobs and "fuse_predictions" not in jobs),
    "a default written out": (edit("preprocess.brain_extraction.backend", "deepbet"), [], lambda jobs: not jobs),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_config_change_reruns_exactly_what_it_affects(finished_run: Path, change: str) -> None:
    """The jobs a changed value plans are exactly those of forcing the rules that read it (and what
    depends on them), plus write_provenance, write_methods and write_checklist, which record the config."""
    mutate, readers, check = CHANGES[change]
    config = tiny_config()
    mutate(config)
    with changed_config(finished_run, config):
        result = run_snakemake(finished_run, "-n", "--cores", "2")
        forced = run_snakemake(finished_run, "-n", "--cores", "2", "--forcerun", *readers) if readers else None
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    jobs = planned_jobs(result.stdout)
    jobs.pop("all", None)
    expected = {}
    if forced is not None:
        assert forced.returncode == 0, (forced.stdout + forced.stderr)[-3000:]
        expected = {**planned_jobs(forced.stdout), "write_provenance": 1, "write_methods": 1, "write_checklist": 2}
        expected.pop("all", None)
    assert jobs == expected, result.stdout[-3000:]
    assert check(jobs), jobs


TABLES = ("tables/metrics.tsv", "tables/predictions.tsv")


def snapshot(workdir: Path, *extra: str) -> dict[str, bytes]:
    return {name: (workdir / RESULTS / name).read_bytes() for name in (*TABLES, *extra)}


def assert_same(after: dict[str, bytes], before: dict[str, bytes]) -> None:
    changed = [name for name in before if after[name] != before[name]]
    assert not changed, f"not byte-identical after the rerun: {changed}"


def test_retraining_from_the_same_crops_gives_identical_tables(finished_run: Path) -> None:
    model = "models/t1ce_resnet18/fold0"
    before = snapshot(finished_run, f"{model}/predictions.tsv")
    stamp = (finished_run / RESULTS / model / "checkpoint.pt").stat().st_mtime
    # Retrain one model on one fold, and recompute what reads it (its fold's two fusions and the
    # tables) even though their inputs come back identical.
    forced = [str(RESULTS / model / "checkpoint.pt"), "evaluate_models",
              *(str(RESULTS / f"models/fusion_{m}/fold0/predictions.tsv") for m in ("mean", "lr"))]
    result = run_snakemake(finished_run, "--cores", "2", "--forcerun", *forced)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Finished jobid" in result.stdout + result.stderr
    assert (finished_run / RESULTS / model / "checkpoint.pt").stat().st_mtime > stamp  # really retrained
    assert_same(snapshot(finished_run, f"{model}/predictions.tsv"), before)


def test_run_killed_during_training_resumes_to_the_same_tables(finished_run: Path) -> None:
    model = "models/flair_resnet18/fold1"
    before = snapshot(finished_run, f"{model}/predictions.tsv")
    log = finished_run / RESULTS / "logs/train_model/flair_resnet18_fold1.log"
    start = time.time()
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(finished_run), "--cores", "2",
           "--forcerun", str(RESULTS / model / "checkpoint.pt")]
    with open(finished_run / "killed_run.log", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            # Kill once the first epoch is done (training goes on).
            while time.time() - start < 300 and proc.poll() is None:
                if log.exists() and log.stat().st_mtime > start and "epoch 1/" in log.read_text():
                    break
                time.sleep(0.2)
            assert proc.poll() is None, "the run ended before it could be killed during training"
            os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job: no chance to clean up
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    try:
        # train_model writes its outputs only once the epoch is chosen (train.selection): a job killed
        # mid-training leaves none of them half-written, so the next run simply plans it again
        assert not any((finished_run / RESULTS / model).iterdir()), "a killed training job left outputs"
        dry = run_snakemake(finished_run, "-n", "--cores", "2")
        assert dry.returncode == 0 and planned_jobs(dry.stdout).get("train_model") == 1, dry.stdout[-3000:]
        assert f"{model}/checkpoint.pt" in dry.stdout + dry.stderr

        locked = run_snakemake(finished_run, "--cores", "2")
        assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr  # the killed run's lock
    finally:  # the next tests share this run: never leave it locked
        assert run_snakemake(finished_run, "--unlock").returncode == 0
    resumed = run_snakemake(finished_run, "--cores", "2")
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    assert_same(snapshot(finished_run, f"{model}/predictions.tsv"), before)

    again = run_snakemake(finished_run, "-n", "--cores", "2")
    assert again.returncode == 0 and planned_jobs(again.stdout) == {}, again.stdout[-3000:]
