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
    # the explanation maps the failure analysis shows: each map link of failures.md resolves inside the archive
    import posixpath
    import re

    with tarfile.open(tar) as archive:
        failures_md = archive.extractfile("demo/reporting/failures.md").read().decode()
    links = {posixpath.normpath(f"reporting/{t}") for t in re.findall(r"\]\((\.\./[^)\s]+)\)", failures_md)}
    maps = {n for n in links if n.startswith("explain/")}  # (QC montages are not archived: qc/qc.tsv only)
    assert maps and maps <= names
    assert "tables/explanation_sanity.tsv" in names and not any(n.endswith(".snakemake_timestamp") for n in names)
    assert tar.stat().st_size < 5_000_000  # tables, figures and map overlays, not images or checkpoints

    digest = (finished_run / "results/demo/archive/demo.tar.gz.sha256").read_text().split()[0]  # the paper's
    assert oncoflow(["verify-archive", str(tar), "--into", str(finished_run / "restored"), "--expect-sha256", digest]) == 0
    out = capsys.readouterr().out
    assert "OK, " in out and "recomputed from the archived predictions, splits, sample sheet and config match" in out
    assert "not recomputed (checked by checksum only): " in out and "qc/qc.tsv" in out.split("not recomputed")[1]
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


# --- edits with MANIFEST.sha256 recomputed: caught by recomputing from the archived predictions (#29) ------------
# Each family's edit goes into one forged archive (different files and rows; the recomputation reads
# only the predictions, splits, sheet, config, qc.tsv and provenance, which no edit but the
# provenance's checksum of metrics.tsv touches), verified once; a test per family reads its message.


@pytest.fixture(scope="module")
def archive(finished_run: Path) -> Path:
    """The finished run's paper archive (made here unless test_snakemake_archive_for_a_paper did)."""
    tar = finished_run / "results/demo/archive/demo.tar.gz"
    if not tar.is_file():
        made = run_snakemake(finished_run, "--cores", "1", "archive")
        assert made.returncode == 0, made.stderr[-5000:]
    return tar


def replace_cell(path: Path, row: int, header: str, new: str) -> str:
    """Put ``new`` in the cell under ``header`` of the ``row``-th body row of a .md or .tex table; the old text."""
    from oncoflow.report.table_check import _latex_rows, _markdown_rows

    text = path.read_text()
    latex = path.suffix == ".tex"
    rows = (_latex_rows if latex else _markdown_rows)(text)
    j = rows[0].index(header)
    old = rows[row][j]
    lines = text.splitlines(keepends=True)
    body = [k for k, line in enumerate(lines) if (line.rstrip("\n").endswith(r" \\") if latex
                                                 else line.startswith("|") and not set(line.strip()) <= set("|-: "))]
    sep = " & " if latex else "|"
    cells = lines[body[row]].split(sep)
    k = j if latex else j + 1  # a Markdown row starts with "|"
    cells[k] = cells[k].replace(old, new, 1)
    lines[body[row]] = sep.join(cells)
    path.write_text("".join(lines))
    return old


def raise_pooled_auc_everywhere(root: Path) -> None:
    """Row 1's AUC raised in metrics.tsv, .md and .tex, and provenance.json's checksum of metrics.tsv
    updated: only tables/predictions.tsv (and so the recomputation) tells."""
    import hashlib

    tsv = root / "tables/metrics.tsv"
    lines = tsv.read_text().splitlines(keepends=True)
    header, cells = lines[0].rstrip("\n").split("\t"), lines[1].rstrip("\n").split("\t")
    auc = min(float(cells[header.index("auc")]) + 0.2, 0.99)
    cells[header.index("auc")] = f"{auc:.4f}"
    lines[1] = "\t".join(cells) + "\n"
    tsv.write_text("".join(lines))
    replace_cell(root / "tables/metrics.md", 1, "pooled AUC", f"{auc:.3f}")
    replace_cell(root / "tables/metrics.tex", 1, "pooled AUC", f"{auc:.3f}")
    record = json.loads((root / "provenance.json").read_text())
    record["inputs"]["metrics"]["sha256"] = hashlib.sha256(tsv.read_bytes()).hexdigest()
    (root / "provenance.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def forged_problems(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Restore the archive, edit it as a forger would (every family below), pack it again with a
    recomputed MANIFEST.sha256 and return verify-archive's problems."""
    import matplotlib.image

    tmp = tmp_path_factory.mktemp("forged")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / "restored", filter="data")
    root = tmp / "restored" / "demo"
    replace_cell(root / "tables/metrics.md", 2, "pooled AUC", "0.950")  # md
    replace_cell(root / "tables/metrics.tex", 2, "CI low", "0.111")  # tex
    pixels = matplotlib.image.imread(root / "figures/roc.png")  # figure
    pixels[40:60, 40:60, :3] = 0.0
    matplotlib.image.imsave(root / "figures/roc.png", pixels)
    (root / "methods.md").unlink()  # deleted file
    raise_pooled_auc_everywhere(root)  # coordinated tsv + md + tex + provenance
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST}
    write_archive(tmp / "forged.tar.gz", files, root="demo")
    problems = verify_archive(tmp / "forged.tar.gz").problems
    assert not [p for p in problems if p.startswith(("checksum mismatch", "not in", "cannot", "provenance.json"))]
    return problems


def named(problems: list[str], start: str, *parts: str) -> bool:
    return any(p.startswith(start) and all(part in p for part in parts) for p in problems)


def test_a_changed_pooled_auc_in_metrics_md_is_named(forged_problems: list[str]) -> None:
    assert named(forged_problems, "tables/metrics.md: row 2", "column 'pooled AUC'", "archived '0.950'"), forged_problems


def test_a_changed_ci_low_in_metrics_tex_is_named(forged_problems: list[str]) -> None:
    assert named(forged_problems, "tables/metrics.tex: row 2", "column 'CI low'", "archived '0.111'"), forged_problems


def test_an_edited_figure_differs_from_its_rerendering(forged_problems: list[str]) -> None:
    assert named(forged_problems, "figures/roc.png: differs from its re-rendering"), forged_problems
    assert not named(forged_problems, "figures/pr.png")  # the untouched figures re-render byte for byte


def test_a_file_deleted_with_its_manifest_line_is_missed(forged_problems: list[str]) -> None:
    assert "missing: methods.md (provenance.json lists it among the run's archived outputs)" in forged_problems


def test_tsv_md_tex_and_provenance_edited_together_disagree_with_the_predictions(forged_problems: list[str]) -> None:
    for name, column in (("tables/metrics.tsv", "auc"), ("tables/metrics.md", "pooled AUC"),
                         ("tables/metrics.tex", "pooled AUC")):
        assert named(forged_problems, f"{name}: row 1", f"column '{column}'"), (name, forged_problems)
    # the model card quotes provenance.json's checksum of metrics.tsv: the forger's edit of it shows there too
    assert named(forged_problems, "reporting/model_card.json", "sha256"), forged_problems
