"""Issue 19: bad input, full disks and interrupted runs stop the job that met them, with a message
naming subject, file and what to do, instead of a run that reports success with wrong outputs."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_with_file_size_limit(code: str, limit_bytes: int) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python whose writes fail with EFBIG beyond ``limit_bytes``: the same
    short write a full disk gives (Python ignores SIGXFSZ, so the writer sees the error)."""
    prologue = (f"import resource\nresource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes}))\n")
    return subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(code)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin",
                               "PYTHONDONTWRITEBYTECODE": "1"})  # a .pyc cut by the limit breaks later imports


def test_full_disk_fails_the_bias_correction_job_and_leaves_no_file(shared_data, tmp_path):
    """Before: correct_bias exited 0 ("100% done") with a truncated 300 kB t1.nii.gz (ITK reports a
    short write only on stderr), which the next rule failed to decompress and a rerun never remade."""
    src = shared_data / "tcga_glioma" / "TCGA-FG-6692" / "native" / "t1.nii.gz"
    out = tmp_path / "n4" / "t1.nii.gz"
    result = run_with_file_size_limit(f"""
        from pathlib import Path
        from oncoflow.preprocess.subject import bias_correct_subject
        bias_correct_subject("TCGA-FG-6692", {{"t1": Path("{src}")}}, {{"t1": Path("{out}")}},
                             shrink_factor=4, iterations=(5,))
        """, 300_000)
    assert result.returncode != 0
    assert f"{out}: could not be written completely" in result.stderr
    assert "Free disk space" in result.stderr
    assert list(out.parent.iterdir()) == []  # neither the output nor a temporary file


def test_full_disk_fails_a_table_write(tmp_path):
    """Tables go through the same all-or-nothing write (here the evaluation's metrics table)."""
    out = tmp_path / "tables" / "metrics.tsv"
    result = run_with_file_size_limit(f"""
        import numpy as np, pandas as pd
        from oncoflow.metrics.evaluate import write_table
        write_table(pd.DataFrame({{"model": ["m"] * 20000, "auc": np.linspace(0, 1, 20000)}}), "{out}")
        """, 50_000)
    assert result.returncode != 0 and "could not be written completely" in result.stderr
    assert list(out.parent.iterdir()) == []


def test_absurd_intensities_stop_the_first_step_naming_subject_and_file(shared_data, tmp_path):
    """Before: a float32 image scaled by 1e34 went through N4 and cropping to an all-NaN crop (exit 0,
    QC mean inf) and failed only in scikit-learn, without naming the subject."""
    import nibabel as nib
    import numpy as np

    from oncoflow.preprocess.errors import PreprocessError
    from oncoflow.preprocess.subject import bias_correct_subject

    src = nib.load(shared_data / "tcga_glioma" / "TCGA-FG-6692" / "native" / "t1.nii.gz")
    scaled = tmp_path / "raw" / "t1.nii.gz"
    scaled.parent.mkdir()
    nib.save(nib.Nifti1Image(np.asarray(src.dataobj, dtype=np.float32) * np.float32(1e34), src.affine), scaled)
    out = tmp_path / "n4" / "t1.nii.gz"
    with pytest.raises(PreprocessError, match=r"\[TCGA-FG-6692\] .*raw/t1.nii.gz: image has intensities up to"):
        bias_correct_subject("TCGA-FG-6692", {"t1": scaled}, {"t1": out}, shrink_factor=4, iterations=(5,))
    assert not out.exists()


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_a_step_that_overflows_to_inf_is_stopped_before_its_output_is_written(shared_data, tmp_path):
    from oncoflow.preprocess.errors import PreprocessError
    from oncoflow.preprocess.images import read_image, write_image

    img = read_image(shared_data / "tcga_glioma" / "TCGA-FG-6692" / "native" / "flair.nii.gz", "TCGA-FG-6692")
    overflowed = img * 1e36  # float32: every voxel above ~340 becomes inf
    out = tmp_path / "TCGA-FG-6692" / "coreg" / "flair.nii.gz"
    with pytest.raises(PreprocessError, match=r"\[TCGA-FG-6692\] .*modality flair: this step produced \d+ NaN or "
                                              r"infinite voxel"):
        write_image(overflowed, out, "TCGA-FG-6692")
    assert not out.exists()


# --- labels and cohorts parse strictly -------------------------------------------------------------


@pytest.fixture()
def demo_sheet(tmp_path: Path, tiny_cohort: Path) -> Path:
    import shutil

    shutil.copytree(tiny_cohort.parent, tmp_path / "data" / "demo")
    return tmp_path / "data" / "demo" / "samples.tsv"


def load_edited(sheet_path: Path, edit):
    import pandas as pd
    from snakemake.utils import validate
    from workflow_helpers import base_config

    from oncoflow.sheet import load_samples

    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    edit(sheet)
    sheet.to_csv(sheet_path, sep="\t", index=False)
    config = base_config()
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return load_samples(config, base=sheet_path.parents[2])


@pytest.mark.parametrize(("value", "message"), [
    ("NaN", r"a missing-value token \(NaN, NA, ...\) at line 3 \(subject 'demo002'\), line 5 \(subject 'demo004'\)"),
    ("1 ", r"spaces around the value at line 3 \(subject 'demo002'\), line 5"),
    ("", r"blank at line 3 \(subject 'demo002'\), line 5"),
])
def test_labels_parse_strictly_naming_every_bad_row(demo_sheet: Path, value: str, message: str) -> None:
    """Before: {1, NaN} made NaN the negative class, and "1 " beside "1" became 0, silently."""
    from oncoflow.config import ConfigError

    def edit(sheet):
        sheet.loc[[1, 3], "label"] = value
    with pytest.raises(ConfigError, match=message):
        load_edited(demo_sheet, edit)


def test_a_cohort_typo_is_an_error_not_a_training_subject(demo_sheet: Path) -> None:
    """Before: `extrenal` was neither external nor refused, so that subject was trained on."""
    from oncoflow.config import ConfigError

    def edit(sheet):
        sheet.loc[13, "cohort"] = "extrenal"
    with pytest.raises(ConfigError, match=r"column 'cohort': 'extrenal' at line 15 \(subject 'demo014'\) is neither "
                                          r"internal \(cohort.internal: \['train'\]\) nor external"):
        load_edited(demo_sheet, edit)
    assert len(load_edited(demo_sheet, lambda sheet: sheet.__setitem__("cohort", "train"))) == 14


# --- wrong images: a CT, another patient's series, another exam; an MRN as subject ID ---------------


def demo_series(folder: Path) -> dict[str, list[Path]]:
    """A demo subject's DICOM files by SeriesDescription."""
    import pydicom

    series: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            series.setdefault(str(pydicom.dcmread(path, stop_before_pixels=True).SeriesDescription), []).append(path)
    return series


def set_tag(files: list[Path], **values: str) -> None:
    import pydicom

    for path in files:
        ds = pydicom.dcmread(path)
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.save_as(path)


def matching(series: dict[str, list[Path]], pattern: str) -> str:
    import re

    (name,) = [d for d in series if re.search(pattern, d, re.I)]
    return name


@pytest.fixture()
def exam(tmp_path: Path, tiny_cohort: Path):
    """demo001's DICOM folder (copied) and a function that ingests it with the shipped rules."""
    import shutil

    import yaml

    from oncoflow.ingest.subject import ingest_subject

    folder = tmp_path / "demo001"
    shutil.copytree(tiny_cohort.parent / "dicom" / "demo001", folder)
    rules = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["ingest"]["modalities"]

    def ingest(subject: str = "demo001", **policy):
        from oncoflow.ingest.identity import IdentityPolicy

        return ingest_subject(subject, folder, rules, tmp_path / "raw", modalities=list(rules),
                              policy=IdentityPolicy(**policy))
    return folder, ingest


def test_a_ct_series_with_a_matching_description_is_refused(exam) -> None:
    """Before: a CT named like the T1 post-contrast series was converted as t1ce (sidecar: Modality CT)."""
    from oncoflow.ingest.errors import IngestError

    folder, ingest = exam
    series = demo_series(folder)
    t1ce = matching(series, r"post|gad|\+c")
    set_tag(series[t1ce], Modality="CT")
    with pytest.raises(IngestError, match=rf"\[demo001\] t1ce: series #\d+ \"{t1ce}\" has DICOM Modality 'CT', not MR"):
        ingest()
    assert not (folder.parent / "raw" / "t1ce.nii.gz").exists()


def test_another_patients_series_is_refused_even_with_the_multi_study_override(exam, tiny_cohort: Path) -> None:
    """Before: a FLAIR of another patient in the subject's folder was accepted (IDs never compared)."""
    import shutil

    from oncoflow.ingest.errors import IngestError

    folder, ingest = exam
    own = demo_series(folder)
    for path in own[matching(own, "flair")]:
        path.unlink()
    other = demo_series(tiny_cohort.parent / "dicom" / "demo002")
    for path in other[matching(other, "flair")]:
        shutil.copy(path, folder / f"other_{path.name}")
    with pytest.raises(IngestError, match=r"\[demo001\] the series chosen differ in DICOM PatientID \(2 values: .*"
                                          r"flair \(series .*another patient's series"):
        ingest(allow_multiple_studies=True)
    messages = []
    try:
        ingest()
    except IngestError as exc:
        messages.append(str(exc))
    assert "MRN" not in messages[0]  # the values themselves (an MRN) never reach the log


def test_a_series_from_another_exam_needs_the_documented_override(exam) -> None:
    import pydicom

    from oncoflow.ingest.errors import IngestError

    folder, ingest = exam
    series = demo_series(folder)
    set_tag(series[matching(series, "flair")], StudyInstanceUID=pydicom.uid.generate_uid())
    with pytest.raises(IngestError, match=r"differ in DICOM StudyInstanceUID .* set ingest.allow_multiple_studies: true"):
        ingest()
    assert sorted(ingest(allow_multiple_studies=True)) == ["flair", "t1", "t1ce", "t2"]


def test_a_subject_id_equal_to_the_patient_id_is_refused_naming_the_column(exam) -> None:
    import pydicom

    from oncoflow.ingest.errors import IngestError

    folder, ingest = exam
    mrn = str(pydicom.dcmread(next(p for p in folder.rglob("*") if p.is_file()), stop_before_pixels=True).PatientID)
    with pytest.raises(IngestError, match=r"column 'subject': the subject ID equals the exam's DICOM PatientID.*"
                                          r"ingest.allow_patient_id_as_subject"):
        ingest(mrn)


# --- a forced rerun killed after it deleted fold outputs -------------------------------------------


@pytest.mark.slow
def test_fold_outputs_lost_in_a_killed_forced_rerun_are_remade(finished_run: Path) -> None:
    """`snakemake -R train_model` deletes each job's outputs before it starts; killed (the whole process
    group) there, it leaves empty fold folders. Before: the next run said "Nothing to be done" (the
    tables made from them still existed) and `snakemake archive`, once an archive existed, said the same
    (a missing input of an existing output is not looked at), so the old archive stood for a results
    folder without fold outputs. (This test once passed alone and failed after test_archive.py: only
    then did the archive exist; it now makes the archive first.)"""
    from workflow_helpers import planned_jobs, run_snakemake

    archived = run_snakemake(finished_run, "--cores", "1", "archive")  # as after a paper's first archive
    assert archived.returncode == 0, archived.stderr[-3000:]
    fold = finished_run / "results" / "demo" / "models" / "flair_resnet18" / "fold1"
    kept = finished_run / "kept_fold1"
    fold.rename(kept)
    fold.mkdir()
    try:
        for target, last in (((), "all"), (("archive",), "write_archive")):
            result = run_snakemake(finished_run, "-n", "--cores", "1", *target)
            assert result.returncode == 0, result.stderr[-3000:]
            assert "Nothing to be done" not in result.stdout + result.stderr
            jobs = planned_jobs(result.stdout)
            assert jobs.get("train_model") == 1, jobs
            assert jobs.get("evaluate_models") == 1 and "fuse_predictions" in jobs and last in jobs, jobs
    finally:
        fold.rmdir()
        kept.rename(fold)
    for target in ((), ("archive",)):
        again = run_snakemake(finished_run, "-n", "--cores", "1", *target)
        assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]


# --- identifying text: NIfTI sidecars, logs ----------------------------------------------------------

IDENTIFIED_SIDECAR = {
    "PatientName": "DOE^JOHN", "PatientID": "MRN4455667", "PatientAddress": "12 Elm Street, Springfield",
    "IssuerOfPatientID": "SPRINGFIELD GENERAL", "PatientBirthTime": "081500", "PatientTelephoneNumbers": "555-0199",
    "OtherPatientNames": "SMITH^JOHNNY", "PhysiciansOfRecord": "HIBBERT^JULIUS",
    "NameOfPhysiciansReadingStudy": "RIVIERA^NICK", "PatientPosition": "HFS", "RepetitionTime": 2.3,
}


def nifti_exam(shared_data: Path, folder: Path, description: str) -> Path:
    import json
    import shutil

    folder.mkdir()
    shutil.copy(shared_data / "tcga_glioma" / "TCGA-FG-6692" / "native" / "t1.nii.gz", folder / "t1.nii.gz")
    (folder / "t1.json").write_text(json.dumps({**IDENTIFIED_SIDECAR, "SeriesDescription": description,
                                                "ProtocolName": description}))
    return folder


def test_nifti_sidecars_are_deidentified_like_dicom_ones(shared_data: Path, tmp_path: Path) -> None:
    """Before: the sidecar was copied with PatientAddress, IssuerOfPatientID, PatientBirthTime, phone
    numbers, other names and physicians."""
    import json

    from oncoflow.ingest.subject import ingest_nifti_folder

    folder = nifti_exam(shared_data, tmp_path / "in", "AX T1 PRE")
    ingest_nifti_folder("sub01", folder, tmp_path / "raw", modalities=["t1"])
    meta = json.loads((tmp_path / "raw" / "t1.json").read_text())
    assert meta["PatientPosition"] == "HFS" and meta["RepetitionTime"] == 2.3
    assert not set(IDENTIFIED_SIDECAR) - {"PatientPosition", "RepetitionTime"} & set(meta)
    written = "".join(p.read_text() for p in (tmp_path / "raw").glob("*.json")) + (tmp_path / "raw" / "series.tsv").read_text()
    for value in ("DOE", "MRN4455667", "Elm Street", "555-0199", "SMITH", "HIBBERT", "RIVIERA", "SPRINGFIELD"):
        assert value.lower() not in written.lower()


def test_a_name_in_a_nifti_description_is_refused_without_printing_it(shared_data: Path, tmp_path: Path,
                                                                      capsys) -> None:
    """Before: SeriesDescription/ProtocolName with the name and MRN went into the sidecar and series.tsv."""
    from oncoflow.ingest.errors import IngestError
    from oncoflow.ingest.subject import ingest_nifti_folder

    folder = nifti_exam(shared_data, tmp_path / "in", "T1 DOE JOHN MRN4455667")
    with pytest.raises(IngestError, match=r"\[sub01\] de-identification check failed: the value of PatientID, "
                                          r"PatientName in series.tsv") as err:
        ingest_nifti_folder("sub01", folder, tmp_path / "raw", modalities=["t1"])
    assert not (tmp_path / "raw" / "t1.nii.gz").exists()
    for text in (str(err.value), capsys.readouterr().err):
        assert "MRN4455667" not in text and "doe" not in text.lower()


def test_the_dicom_log_and_error_do_not_print_a_name_in_a_description(exam, capsys) -> None:
    """Before: outputs were refused, but the rule's log (series -> modality report, "converting ...")
    and the error printed the description holding the patient's name."""
    import pydicom

    from oncoflow.ingest.errors import IngestError

    folder, ingest = exam
    series = demo_series(folder)
    t2 = matching(series, r"^(?!.*flair).*t2")
    name = str(pydicom.dcmread(series[t2][0], stop_before_pixels=True).PatientName)
    set_tag(series[t2], SeriesDescription=f"{t2} {name.replace('^', ' ')}")
    with pytest.raises(IngestError, match="de-identification check failed: the value of PatientName in") as err:
        ingest()
    log = capsys.readouterr().err
    assert f"{t2} <PatientName>" in log  # the series is still recognisable in the log
    family = name.split("^")[0]
    assert family.lower() not in (log + str(err.value)).lower()


# --- crashes at job time become errors before any job ------------------------------------------------


def load_with_config(sheet_path: Path, change_config=lambda c: None, edit=lambda s: None):
    import pandas as pd
    from snakemake.utils import validate
    from workflow_helpers import base_config

    from oncoflow.config import check_config
    from oncoflow.sheet import load_samples
    from oncoflow.train.folds import check_folds

    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    edit(sheet)
    sheet.to_csv(sheet_path, sep="\t", index=False)
    config = base_config()
    change_config(config)
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    check_config(config)
    samples = load_samples(config, base=sheet_path.parents[2])
    check_folds(config, samples)  # split_folds' input function: while the DAG is built
    return samples


@pytest.mark.parametrize(("change_config", "edit", "message"), [
    (lambda c: c["cv"].update(folds=8), lambda s: None,
     r"config: cv: scheme stratified, folds 8, val_fraction 0.25 cannot be split from 12 internal subjects \(7 positive, 5 negative\): cv.folds=8 but the "
     r"smaller class has only 5"),
    (lambda c: c["cv"].update(folds=2, val_fraction=0.05), lambda s: None,
     r"config: cv: scheme stratified, folds 2, val_fraction 0.05 cannot be split .*Use fewer folds, a larger cv.val_fraction"),
    (lambda c: c["ingest"]["modalities"].update(t2=["t2", "t2(?!flair"]), lambda s: None,
     r"config: ingest.modalities.t2\[1\]: invalid regular expression 't2\(\?!flair'"),
    (lambda c: None, lambda s: s.__setitem__("subject", ["x" * 300] + list(s["subject"].iloc[1:])),
     r"column 'subject': line 2: an ID of 300 characters \(at most 64"),
    (lambda c: c["cv"].update(seed=-1), lambda s: None, r"-1 is less than the minimum of 0"),
])
def test_problems_that_crashed_a_job_stop_the_run_at_config_time(demo_sheet: Path, change_config, edit,
                                                                  message: str) -> None:
    """Before: more folds than positives or a too small inner validation failed split_folds with an
    internal traceback; a bad regex failed every subject's ingest; a 300-character ID failed with an
    OSError at job time; `cv.seed: -1` failed in NumPy."""
    with pytest.raises(Exception, match=message):
        load_with_config(demo_sheet, change_config, edit)


def test_a_duplicate_config_key_stops_snakemake_before_any_job(demo_sheet: Path) -> None:
    """Before: YAML kept the last of two `cv:` sections silently."""
    from workflow_helpers import run_snakemake

    workdir = demo_sheet.parents[2]
    (workdir / "config").mkdir()
    text = (REPO / "config" / "config.yaml").read_text() + "\ncv:\n  folds: 2\n"
    (workdir / "config" / "config.yaml").write_text(text)
    result = run_snakemake(workdir, "-n", "--cores", "1")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config.yaml: line" in output and "duplicate key 'cv'" in output


def test_a_moved_project_has_nothing_to_do(demo_sheet: Path) -> None:
    """Before: the sheet's paths became absolute job inputs, so a copied or moved project reran
    every job (changed input set)."""
    from workflow_helpers import base_config, run_snakemake, write_config

    workdir = demo_sheet.parents[2]
    write_config(workdir, base_config())
    target = "results/demo/subjects/demo001/raw/series.tsv"
    first = run_snakemake(workdir, "--cores", "1", target)
    assert first.returncode == 0, first.stdout[-3000:]
    moved = workdir.with_name(workdir.name + "_moved")
    workdir.rename(moved)
    again = run_snakemake(moved, "-n", "--cores", "1", target)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]


# --- verify-archive on a malformed or hostile archive --------------------------------------------


def hostile_archives(tmp_path: Path) -> dict[str, Path]:
    import io
    import tarfile

    from oncoflow.report.archive import write_archive

    good = tmp_path / "good.tar.gz"
    write_archive(good, {"tables/metrics.tsv": b"model\\tauc\\nm\\t0.7\\n", "provenance.json": b"{}"}, root="demo")
    traversal = tmp_path / "traversal.tar.gz"
    with tarfile.open(traversal, "w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"owned"))
    text = tmp_path / "notes.tar.gz"
    text.write_text("not an archive\\n")
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return {"good": good, "traversal": traversal, "not a tar": text, "truncated": truncated}


@pytest.mark.parametrize("kind", ["traversal", "not a tar", "truncated"])
def test_verify_archive_refuses_a_hostile_or_broken_archive_without_a_traceback(tmp_path: Path, kind: str,
                                                                                capsys) -> None:
    """Before: each of these ended in a raw traceback (tarfile/gzip errors)."""
    from oncoflow.cli import main

    archives = hostile_archives(tmp_path)
    into = tmp_path / "restore" / "here"
    assert main(["verify-archive", str(archives[kind]), "--into", str(into)]) == 1
    err = capsys.readouterr().err
    assert "not a complete, safe .tar.gz made by `snakemake archive`" in err
    assert not (tmp_path / "restore" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_verify_archive_prints_the_archives_own_checksum(tmp_path: Path, capsys) -> None:
    import hashlib

    from oncoflow.cli import main

    good = hostile_archives(tmp_path)["good"]
    main(["verify-archive", str(good)])
    assert f"sha256 of the archive itself: {hashlib.sha256(good.read_bytes()).hexdigest()}" in capsys.readouterr().out


def test_keep_going_ends_with_the_failed_subjects_and_why(demo_sheet: Path) -> None:
    """Before: the run ended with Snakemake's "At least one job did not complete successfully" and
    log paths; the README promised the failed subjects."""
    from workflow_helpers import base_config, run_snakemake, write_config

    workdir = demo_sheet.parents[2]
    write_config(workdir, base_config())
    series = demo_series(workdir / "data" / "demo" / "dicom" / "demo002")
    set_tag(series[matching(series, r"post|gad|\+c")], Modality="CT")
    targets = [f"results/demo/subjects/{s}/raw/series.tsv" for s in ("demo001", "demo002")]
    result = run_snakemake(workdir, "--cores", "1", "--keep-going", *targets)
    assert result.returncode != 0
    assert (workdir / targets[0]).is_file() and not (workdir / targets[1]).exists()
    summary = (result.stdout + result.stderr).split("1 job(s) failed")[1]
    assert re.search(r"convert_dicom: .*\[demo002\] t1ce: series #\d+ .* has DICOM Modality 'CT', not MR", summary)
    assert "[log: results/demo/logs/convert_dicom/demo002.log]" in summary


def test_int64_nifti_input_is_refused_at_ingest_saying_how_to_convert(shared_data: Path, tmp_path: Path) -> None:
    """Before: ingest accepted it and N4 failed with "cannot read image ('long')"."""
    import nibabel as nib
    import numpy as np

    from oncoflow.ingest.errors import IngestError
    from oncoflow.ingest.subject import ingest_nifti_folder

    src = nib.load(shared_data / "tcga_glioma" / "TCGA-FG-6692" / "native" / "t1.nii.gz")
    (tmp_path / "in").mkdir()
    img = nib.Nifti1Image(np.asarray(src.dataobj).astype(np.int64), src.affine, dtype=np.int64)
    nib.save(img, tmp_path / "in" / "t1.nii.gz")
    with pytest.raises(IngestError, match=r"\[sub01\] t1 from .*t1.nii.gz stores 64-bit integer voxels \(int64\).*int32"):
        ingest_nifti_folder("sub01", tmp_path / "in", tmp_path / "raw", modalities=["t1"])


def test_provenance_paths_are_project_relative_and_the_host_optional(tiny_cohort: Path, tmp_path: Path,
                                                                     monkeypatch) -> None:
    """Before: provenance.json (and so the archive) held absolute input paths and the host name."""
    import json
    import shutil
    import socket

    from oncoflow.report.provenance import write_provenance

    shutil.copytree(tiny_cohort.parent / "dicom" / "demo001", tmp_path / "data" / "dicom" / "demo001")
    (tmp_path / "data" / "samples.tsv").write_text("subject\tdicom\ndemo001\tdicom/demo001\n")
    monkeypatch.chdir(tmp_path)
    write_provenance(Path("results/provenance.json"), config={"cv": {"seed": 1, "folds": 2}}, repo=REPO,
                     inputs={"samples": Path("data/samples.tsv")}, subjects={"demo001": {"dicom": "data/dicom/demo001"}},
                     config_files=[tmp_path / "data" / "samples.tsv"], record_host=False)
    text = (tmp_path / "results" / "provenance.json").read_text()
    record = json.loads(text)
    assert record["config_files"][0]["path"] == "data/samples.tsv"
    assert str(tmp_path) not in text and socket.gethostname() not in text
    assert "host" not in record["hardware"] and record["hardware"]["cpu_cores"]


def test_verify_archive_catches_a_paper_table_that_disagrees_with_its_tsv(tmp_path: Path, capsys) -> None:
    """Before: a number edited in metrics.md (and the manifest recomputed) passed verification."""
    import numpy as np
    import pandas as pd

    from oncoflow.cli import main
    from oncoflow.metrics.evaluate import write_table
    from oncoflow.report.archive import write_archive

    rng = np.random.default_rng(0)
    metrics = pd.DataFrame({"model": ["t1ce_resnet18", "flair_resnet18", "fusion_mean"], "cohort": "cv",
                            "auc": rng.uniform(0.6, 0.9, 3), "auc_low": rng.uniform(0.4, 0.6, 3),
                            "sensitivity": [0.5, np.nan, 0.75], "n": [12, 12, 12]})
    tables = tmp_path / "tables"
    write_table(metrics, tables / "metrics.tsv", tables / "metrics.md", tables / "metrics.tex",
                ["model", "cohort", "auc", "auc_low", "sensitivity", "n"])

    def archive_and_verify() -> int:
        write_archive(tmp_path / "a.tar.gz", {"tables": tables, "provenance.json": b"{}"}, root="demo")
        return main(["verify-archive", str(tmp_path / "a.tar.gz")])

    assert archive_and_verify() == 0
    shown = f"{metrics.at[1, 'auc']:.3f}"
    md = (tables / "metrics.md").read_text()
    (tables / "metrics.md").write_text(md.replace(shown, f"{metrics.at[1, 'auc'] + 0.1:.3f}"))
    assert archive_and_verify() == 1  # the forger recomputed the manifest: only the cross-check sees it
    assert f"tables/metrics.md: row 2, column 'auc' shows '{metrics.at[1, 'auc'] + 0.1:.3f}'" in capsys.readouterr().err


def test_too_many_folds_stop_snakemake_while_the_dag_is_built(demo_sheet: Path) -> None:
    from workflow_helpers import base_config, run_snakemake, write_config

    workdir = demo_sheet.parents[2]
    config = base_config()
    config["cv"]["folds"] = 8
    write_config(workdir, config)
    result = run_snakemake(workdir, "-n", "--cores", "1")
    assert result.returncode != 0 and "config: cv: scheme stratified, folds 8" in result.stdout + result.stderr
    front = run_snakemake(workdir, "-n", "--cores", "1", "results/demo/subjects/demo001/raw/series.tsv")
    assert front.returncode == 0  # the front half needs no folds


@pytest.mark.slow
def test_keep_going_writes_the_qc_table_with_the_failed_subjects_first(finished_run: Path, tmp_path: Path) -> None:
    """Before: with a subject failed, summarize_qc never ran (its row was missing), so --keep-going
    left no cohort QC table at all. A copy of the finished run (images, QC rows and Snakemake's
    records; no models) where demo002's T1 post-contrast series turns out to be a CT."""
    import os
    import shutil

    import pandas as pd
    from workflow_helpers import planned_jobs, run_snakemake

    work = tmp_path / "run"
    shutil.copytree(finished_run, work, ignore=shutil.ignore_patterns("models", "archive", "restored", "kept_*"))
    qc = work / "results" / "demo" / "qc"
    for stale in ("qc.tsv", "demo002.tsv"):  # as in a first run, in which demo002 never got through
        (qc / stale).unlink()
    shutil.rmtree(work / "results" / "demo" / "subjects" / "demo002")
    series = demo_series(work / "data" / "demo" / "dicom" / "demo002")
    set_tag(series[matching(series, r"post|gad|\+c")], Modality="CT")
    result = run_snakemake(work, "--cores", "1", "--keep-going", "results/demo/qc/qc.tsv")
    assert result.returncode != 0
    assert "qc.tsv: written with 1 failed subject(s) first (demo002)" in result.stderr, result.stderr[-3000:]
    table = pd.read_csv(qc / "qc.tsv", sep="\t", dtype={"subject": str}, keep_default_na=False)
    assert list(table["subject"])[0] == "demo002" and sorted(table["subject"]) == [f"demo{i:03d}" for i in range(1, 15)]
    assert re.fullmatch(r"failed in convert_dicom: \[demo002\] t1ce: series #\d+ .* has DICOM Modality 'CT', not "
                        r"MR.*\(log: results/demo/logs/convert_dicom/demo002\.log\)", table.at[0, "flag"])
    assert (table["brain_ml"].iloc[1:] != "").all() and table.at[0, "brain_ml"] == ""
    assert os.stat(qc / "qc.tsv").st_mtime == 0
    sheet = work / "data" / "demo" / "samples.tsv"  # demo002 left out (with a note of why): the table is remade
    sheet.write_text("".join(line for line in sheet.read_text().splitlines(True) if not line.startswith("demo002\t")))
    again = run_snakemake(work, "-n", "--cores", "1", "results/demo/qc/qc.tsv")
    assert planned_jobs(again.stdout) == {"summarize_qc": 1}, again.stdout[-3000:]


@pytest.mark.slow
def test_snakemakes_log_and_the_rules_log_hold_no_name_from_a_refused_description(demo_sheet: Path) -> None:
    """Outputs are refused when a series description holds the patient's name; the logs that stay
    behind (the rule's log, Snakemake's own .snakemake/log/*.snakemake.log, which copies the rule's
    log of a failed job, and the terminal) must not hold the name either. Before #19 the rule's log
    printed the description in its series table and "converting ..." lines, and Snakemake's log copied it."""
    import pydicom
    from workflow_helpers import base_config, run_snakemake, write_config

    workdir = demo_sheet.parents[2]
    write_config(workdir, base_config())
    folder = workdir / "data" / "demo" / "dicom" / "demo001"
    series = demo_series(folder)
    t2 = matching(series, r"^(?!.*flair).*t2")
    header = pydicom.dcmread(series[t2][0], stop_before_pixels=True)
    name, mrn = str(header.PatientName), str(header.PatientID)
    set_tag(series[t2], SeriesDescription=f"{t2} {name.replace('^', ' ')}", ProtocolName=f"{t2} {mrn}")
    result = run_snakemake(workdir, "--cores", "1", "results/demo/subjects/demo001/raw/series.tsv")
    assert result.returncode != 0
    rule_log = workdir / "results" / "demo" / "logs" / "convert_dicom" / "demo001.log"
    (snakemake_log,) = (workdir / ".snakemake" / "log").glob("*.snakemake.log")
    for where, text in (("rule log", rule_log.read_text()), ("snakemake log", snakemake_log.read_text()),
                        ("terminal", result.stdout + result.stderr)):
        assert "de-identification check failed" in text, where
        for value in (*name.split("^"), mrn):  # DOE, JOHN1, MRN...: as words ("does" is no leak)
            assert not re.search(rf"\b{value}\b", text, re.I), f"{value!r} in the {where}"


@pytest.mark.slow
def test_another_patients_nifti_series_is_flagged_against_the_cohort(finished_run: Path, tmp_path: Path) -> None:
    """Before: with NIfTI input (no PatientID to compare) demo007 given demo001's FLAIR went through
    with no QC flag (its MI after registration was 3.2 robust z from the cohort's, under the outlier
    threshold). A copy of the finished run (no models) in which demo007 comes as a NIfTI folder:
    only demo007's front half and the cohort table are made again."""
    import shutil

    import pandas as pd
    from workflow_helpers import run_snakemake

    work = tmp_path / "run"
    shutil.copytree(finished_run, work, ignore=shutil.ignore_patterns("models", "archive", "restored", "kept_*"))
    raw = work / "results" / "demo" / "subjects"
    folder = work / "data" / "demo" / "nifti" / "demo007"
    folder.mkdir(parents=True)
    for modality in ("t1", "t1ce", "t2"):
        shutil.copy(raw / "demo007" / "raw" / f"{modality}.nii.gz", folder / f"{modality}.nii.gz")
    shutil.copy(raw / "demo001" / "raw" / "flair.nii.gz", folder / "flair.nii.gz")  # the swapped series
    sheet_path = work / "data" / "demo" / "samples.tsv"
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    sheet["nifti"] = ["nifti/demo007" if s == "demo007" else "" for s in sheet["subject"]]
    sheet.loc[sheet["subject"] == "demo007", "dicom"] = ""
    sheet.to_csv(sheet_path, sep="\t", index=False)
    result = run_snakemake(work, "--cores", "1", "results/demo/qc/qc.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "import_nifti" in result.stderr and "convert_dicom" not in result.stderr
    table = pd.read_csv(work / "results" / "demo" / "qc" / "qc.tsv", sep="\t", dtype={"subject": str},
                        keep_default_na=False)
    flagged = table[table["n_flags"] > 0]
    assert list(flagged["subject"]) == ["demo007"], flagged[["subject", "flag"]].to_string()
    assert re.search(r"flair: matches the reference unlike the cohort \(score [\d.]+: MI after registration z "
                     r"[\d.]+, tumor contrast z -[\d.]+\)", flagged["flag"].item()), flagged["flag"].item()
    scores = table.set_index("subject")["mismatch_flair"].astype(float)
    assert scores.idxmax() == "demo007" and scores.drop("demo007").max() < 5.0
