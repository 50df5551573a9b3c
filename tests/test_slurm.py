"""The workflow on a real SLURM: a single-node cluster on this machine (.ci/start_slurm.sh), the
users' command `snakemake --cores N --profile slurm` run from the repository root, and a CI profile
on top: this node has no GPU (train_model's gpu -> 0) and no accounting database (job status from
squeue, checked every few seconds). Skips only where SLURM cannot be installed or started (not
root, no apt-get); any other problem starting it is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from workflow_helpers import REPO, SNAKEMAKE, tiny_config, write_config

START_SLURM = REPO / ".ci" / "start_slurm.sh"
RESULTS = Path("results/demo")
# Polling settings for a cluster without slurmdbd (MinJobAge=300 keeps finished jobs in squeue).
CI_STATUS = {"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 5,
             "slurm-keep-successful-logs": True}
CI_PROFILE = {**CI_STATUS, "set-resources": {"train_model": {"gpu": 0}}}


@pytest.fixture(scope="module")
def slurm() -> None:
    can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if shutil.which("sbatch") is None and not can_install:
        pytest.skip("SLURM is not installed and cannot be here (needs root and apt-get)")
    started = subprocess.run(["bash", str(START_SLURM)], capture_output=True, text=True, timeout=900)
    if started.returncode == 2:
        pytest.skip(started.stderr.strip())
    assert started.returncode == 0, f"{START_SLURM} failed:\n{started.stdout}\n{started.stderr}"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is missing: pip install -e '.[test]'")


def profile(tmp_path_factory: pytest.TempPathFactory, settings: dict) -> Path:
    folder = tmp_path_factory.mktemp("slurm_ci_profile")
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    return folder


@pytest.fixture(scope="module")
def ci_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return profile(tmp_path_factory, CI_PROFILE)


def on_slurm(workdir: Path, ci: Path, *args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """The users' command from the repository root, plus the CI profile and a working directory."""
    cmd = [str(SNAKEMAKE), "--cores", "2", "--profile", "slurm", "--profile", str(ci),
           "--directory", str(workdir), *args]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    (workdir / "slurm_runs.log").open("a").write(f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}\n")
    return result


def slurm_jobs(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    """SLURM's own view of the run's jobs: id -> state, CPUs, memory, GRES (squeue keeps finished
    jobs for MinJobAge)."""
    run_id = re.search(r"SLURM run ID: (\S+)", result.stdout + result.stderr).group(1)
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--name", run_id,
                          "--format=%i|%T|%C|%m|%b|%k"], capture_output=True, text=True, check=True)
    jobs = {}
    for line in out.stdout.splitlines():
        job, state, cpus, mem, gres, comment = line.strip().split("|")
        jobs[job] = {"state": state, "cpus": cpus, "mem": mem, "gres": gres, "comment": comment}
    return jobs


def test_profile_is_found_from_the_repository_root_and_reads_site_settings(monkeypatch) -> None:
    import yte
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(REPO)
    folder, config_file = get_profile_dir("slurm")  # what `--profile slurm` resolves to
    assert folder.resolve() == REPO / "profiles" / "slurm"
    for name in ("ONCOFLOW_SLURM_ACCOUNT", "ONCOFLOW_SLURM_PARTITION", "ONCOFLOW_GPU_PARTITION",
                 "ONCOFLOW_GPU_MODEL"):
        monkeypatch.delenv(name, raising=False)
    plain = yte.process_yaml(config_file.open(), require_use_yte=True)
    assert plain == {"executor": "slurm", "jobs": 100, "latency-wait": 60,
                     "group-components": {"subject": 4}}
    monkeypatch.setenv("ONCOFLOW_SLURM_ACCOUNT", "lab123")
    monkeypatch.setenv("ONCOFLOW_GPU_PARTITION", "gpu")
    monkeypatch.setenv("ONCOFLOW_GPU_MODEL", "a100")
    site = yte.process_yaml(config_file.open(), require_use_yte=True)
    assert site["default-resources"] == {"slurm_account": "lab123"}
    gpu = {"slurm_partition": "gpu", "gpu_model": "a100"}
    assert site["set-resources"] == {"train_model": gpu, "pretrain_model": gpu}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_cohort: Path) -> Path:
    folder = tmp_path_factory.mktemp("slurm_run")
    shutil.copytree(tiny_cohort.parent, folder / "data" / "demo")
    write_config(folder, tiny_config())
    return folder


@pytest.mark.slow
def test_subjects_preprocess_as_one_slurm_job(slurm, ci_profile: Path, workdir: Path) -> None:
    targets = [str(RESULTS / "folds/splits.tsv"),
               *(str(RESULTS / f"subjects/{s}/crop/crop.npz") for s in ("demo001", "demo002"))]
    result = on_slurm(workdir, ci_profile, *targets, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    for target in targets:
        assert (workdir / target).is_file(), target
    # 2 x 5 preprocessing jobs went to SLURM as one group job (group-components), beside split_folds
    jobs = slurm_jobs(result)
    assert len(jobs) == 2 and all(j["state"] == "COMPLETED" for j in jobs.values()), jobs
    assert sum(j["comment"].startswith("rule_split_folds") for j in jobs.values()) == 1, jobs
    logs = list((workdir / ".snakemake/slurm_logs").glob("group_subject_*/*.log"))
    assert len(logs) == 1, logs
    group_log = logs[0].read_text()
    assert "subject=demo001" in group_log and "subject=demo002" in group_log
    group = next(j for j in jobs.values() if j["cpus"] == "2")  # the two subjects side by side
    assert group["gres"] == "N/A"


@pytest.mark.slow
def test_failed_job_fails_the_run_instead_of_hanging(slurm, ci_profile: Path, workdir: Path) -> None:
    broken = workdir / "data/demo/dicom/demo003"
    shutil.rmtree(broken)
    broken.mkdir()  # the folder exists (the sheet is valid), but holds no DICOM: convert_dicom fails
    result = on_slurm(workdir, ci_profile, str(RESULTS / "subjects/demo003/crop/crop.npz"), timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in group subject" in output and "Error in rule convert_dicom" in output, output[-6000:]
    assert "no DICOM image series under" in output  # the job's own log, shown
    assert not (workdir / RESULTS / "subjects/demo003/crop/crop.npz").exists()
    jobs = slurm_jobs(result)
    assert [j["state"] for j in jobs.values()] == ["FAILED"], jobs


@pytest.mark.slow
def test_gpu_rule_on_slurm_asks_for_a_gpu_and_reproduces_the_local_run(
        slurm, ci_profile: Path, finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    model = RESULTS / "models/t1ce_resnet18/fold2"
    tables = [RESULTS / "tables/metrics.tsv", RESULTS / "tables/predictions.tsv", model / "predictions.tsv"]
    before = {t: (finished_run / t).read_bytes() for t in tables}

    # The users' profile as is: train_model asks SLURM for a GPU (--gpus=1); this node has none,
    # so SLURM refuses the job at once and the run stops (nothing is waited on).
    as_is = on_slurm(finished_run, profile(tmp_path_factory, CI_STATUS), "--forcerun",
                     str(model / "checkpoint.pt"), timeout=300)
    output = as_is.stdout + as_is.stderr
    assert as_is.returncode != 0 and "--gpus=1" in output and "sbatch" in output, output[-4000:]

    # With the CI profile (gpu=0) the same job trains on SLURM, on the CPU, and gives the bytes the
    # local run gave.
    forced = [str(model / "checkpoint.pt"), "evaluate_models",
              *(str(RESULTS / f"models/fusion_{m}/fold2/predictions.tsv") for m in ("mean", "lr"))]
    result = on_slurm(finished_run, ci_profile, "--forcerun", *forced, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    jobs = slurm_jobs(result)
    train = [j for j in jobs.values() if j["comment"].startswith("rule_train_model")]
    assert len(train) == 1 and train[0]["state"] == "COMPLETED" and train[0]["gres"] == "N/A", jobs
    changed = [str(t) for t in tables if (finished_run / t).read_bytes() != before[t]]
    assert not changed, f"SLURM rerun differs from the local run: {changed}"
