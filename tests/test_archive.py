"""The manifest (provenance.json), the paper archive (`snakemake archive`) and
`oncoflow verify-archive`: unit tests on small files, then the real thing on the finished tiny run."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from workflow_helpers import planned_jobs, run_snakemake

from oncoflow.cli import main as oncoflow
from oncoflow.report.archive import MANIFEST, verify_archive, write_archive
from oncoflow.report.provenance import rule_times, subject_inputs, write_provenance


def cohort(tmp: Path) -> dict[str, dict[str, str]]:
    subjects = {}
    for subject in ("s1", "s2"):
        dicom = tmp / "dicom" / subject / "series1"
        dicom.mkdir(parents=True)
        for i in range(3):
            (dicom / f"IM{i}").write_bytes(f"{subject}-{i}".encode() * 100)
        mask = tmp / f"{subject}_mask.nii.gz"
        mask.write_bytes(b"mask " + subject.encode())
        subjects[subject] = {"dicom": str(tmp / "dicom" / subject), "tumor_mask": str(mask)}
    return subjects


def test_subject_inputs_digest_every_file_and_notice_any_change(tmp_path: Path) -> None:
    subjects = cohort(tmp_path)
    cache = tmp_path / "cache.tsv"
    first = subject_inputs(subjects, threads=2, cache=cache)
    assert first["files"] == 8 and first["subjects"]["s1"]["dicom"]["files"] == 3
    assert subject_inputs(subjects, cache=cache) == first  # from the cache: same answer
    image = Path(subjects["s2"]["dicom"]) / "series1/IM1"
    image.write_bytes(b"changed")
    changed = subject_inputs(subjects, cache=cache)
    assert changed["subjects"]["s2"]["dicom"]["sha256"] != first["subjects"]["s2"]["dicom"]["sha256"]
    assert changed["subjects"]["s1"] == first["subjects"]["s1"]
    image.rename(image.with_name("IM9"))  # same bytes, another name
    renamed = subject_inputs(subjects, cache=cache)
    assert renamed["subjects"]["s2"]["dicom"]["sha256"] != changed["subjects"]["s2"]["dicom"]["sha256"]


def test_rule_times_come_from_the_benchmark_files(tmp_path: Path) -> None:
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for name, seconds in (("a", 2.5), ("b", 4.0)):
        path = tmp_path / "train_model" / f"{name}.tsv"
        path.parent.mkdir(exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:02\t100.5\t1\t1\t1\t0\t0\t50\t{seconds / 2}\n")
    assert rule_times(tmp_path) == {"train_model": {
        "jobs": 2, "wall_s_total": 6.5, "wall_s_mean": 3.25, "wall_s_max": 4.0, "cpu_s_total": 3.25,
        "max_rss_mb": 100.5}}


def test_manifest_records_what_made_the_results(tmp_path: Path) -> None:
    subjects = cohort(tmp_path)
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("subject\n s1\n")
    config = {"cv": {"seed": 7, "folds": 2}}
    record = write_provenance(tmp_path / "provenance.json", config=config, repo=tmp_path,
                              inputs={"samples": sheet}, subjects=subjects, config_files=[sheet])
    saved = json.loads((tmp_path / "provenance.json").read_text())
    assert saved["sample_sheet"]["sha256"] == record["sample_sheet"]["sha256"]
    assert saved["seeds"]["train"] == {"fold0": 7, "fold1": 8}
    assert {"cpu_model", "cpu_cores", "memory_gb", "gpus"} <= set(saved["hardware"])
    assert saved["software"]["torch"] and saved["subjects"]["files"] == 8
    assert set(saved) >= {"config", "git", "software", "python", "platform", "rule_times", "weights"}


def test_archive_is_reproducible_and_verify_catches_tampering(tmp_path: Path, capsys) -> None:
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables/metrics.tsv").write_text("model\tauc\nm\t0.9\n")
    members = {"tables": tmp_path / "tables", "config/resolved.yaml": b"a: 1\n",
               "figures": tmp_path / "no-figures"}  # absent: left out
    one, two = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    write_archive(one, members, root="study")
    write_archive(two, members, root="study")
    assert one.read_bytes() == two.read_bytes()
    with tarfile.open(one) as tar:
        assert tar.getnames() == [f"study/{MANIFEST}", "study/config/resolved.yaml", "study/tables/metrics.tsv"]

    restored = tmp_path / "restored"
    result = verify_archive(one, restored)
    assert result.checked == 2 and result.problems == ["missing: provenance.json"]  # no manifest here

    (restored / "study/tables/metrics.tsv").write_text("model\tauc\nm\t0.99\n")
    (restored / "study/extra.txt").write_text("?")
    with tarfile.open(tmp_path / "tampered.tar.gz", "w:gz") as tar:
        tar.add(restored / "study", arcname="study")
    problems = verify_archive(tmp_path / "tampered.tar.gz").problems
    assert "checksum mismatch: tables/metrics.tsv" in problems and f"not in {MANIFEST}: extra.txt" in problems
    assert oncoflow(["verify-archive", str(tmp_path / "tampered.tar.gz")]) == 1
    assert "FAIL checksum mismatch: tables/metrics.tsv" in capsys.readouterr().err
    assert oncoflow(["verify-archive", str(tmp_path / "nothing.tar.gz")]) == 2


@pytest.mark.slow
def test_snakemake_archive_for_a_paper(finished_run: Path, capsys) -> None:
    result = run_snakemake(finished_run, "--cores", "1", "archive")
    assert result.returncode == 0, result.stderr[-5000:]
    tar = finished_run / "results/demo/archive/demo.tar.gz"
    with tarfile.open(tar) as archive:
        names = {n.removeprefix("demo/") for n in archive.getnames()}
    assert {MANIFEST, "provenance.json", "tables/metrics.tsv", "tables/metrics.md", "tables/metrics.tex",
            "tables/predictions.tsv", "folds/splits.tsv", "samples/samples.tsv", "config/config.yaml",
            "config/resolved.json", "envs/train.yaml", "pyproject.toml"} <= names
    assert any(n.startswith("figures/") for n in names) and "qc/qc.tsv" in names and "methods.md" in names
    assert {"reporting/flow.tsv", "reporting/flow.png", "reporting/characteristics.tsv", "reporting/failures.md",
            "reporting/checklist_claim.md", "reporting/checklist_tripod_ai.tsv", "reporting/model_card.md",
            "reporting/model_card.json", "reporting/model_card.html"} <= names
    assert tar.stat().st_size < 5_000_000  # tables and figures, not images or checkpoints

    digest = (finished_run / "results/demo/archive/demo.tar.gz.sha256").read_text().split()[0]  # the paper's
    assert oncoflow(["verify-archive", str(tar), "--into", str(finished_run / "restored"), "--expect-sha256", digest]) == 0
    assert "OK, " in capsys.readouterr().out
    assert "data availability: archive demo.tar.gz, sha256 " + digest in (
        finished_run / "results/demo/logs/write_archive/write_archive.log").read_text()
    other = "0" * 64
    assert oncoflow(["verify-archive", str(tar), "--expect-sha256", other]) == 1
    assert f"sha256 {digest} is not the expected {other}" in capsys.readouterr().err
    manifest = json.loads((finished_run / "restored/demo/provenance.json").read_text())
    assert manifest["subjects"]["files"] > 14 * 4 and len(manifest["subjects"]["subjects"]) == 14
    assert {"convert_dicom", "extract_brain", "train_model", "evaluate_models"} <= set(manifest["rule_times"])
    assert manifest["config"]["cv"]["folds"] == 3 and manifest["git"]["commit"]
    again = run_snakemake(finished_run, "-n", "--cores", "1", "archive")
    assert planned_jobs(again.stdout) == {}, again.stdout[-2000:]
