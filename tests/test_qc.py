"""oncoflow.preprocess.qc: the numbers and flags of a subject's QC row, the cohort table, the montage.

A synthetic scene with known geometry (tests/test_crop.py: ellipsoid brain, spherical tumor, three
contrasts) stands in for a preprocessed subject; broken variants must be flagged with the reason.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from test_crop import VOXEL, make_scene, write_scene

from oncoflow.preprocess.qc import MIN_COVERAGE, modality_label, plot_montage, subject_qc, summarize_cohort

SUBJECT = "sub-0042"
MODALITIES = ("t1", "t2", "flair")


def write_reports(folder: Path, *, mi: dict[str, tuple[float, float]] | None = None,
                  brain_flag: str = "") -> tuple[Path, Path]:
    mi = mi or {"t2": (-0.40, -0.80), "flair": (-0.50, -0.90)}
    registration, brain = folder / "registration.tsv", folder / "brain.tsv"
    with open(registration, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["subject", "modality", "reference", "transform", "mi_before", "mi_after", "seconds"])
        for modality, (before, after) in mi.items():
            writer.writerow([SUBJECT, modality, "t1", "Rigid", before, after, 1.0])
    brain.write_text(f"subject\tbackend\tbrain_ml\tflag\tseconds\n{SUBJECT}\tdeepbet\t1400\t{brain_flag}\t5\n")
    return registration, brain


def run_qc(folder: Path, scene: dict[str, np.ndarray], **reports):
    paths = write_scene(scene, folder)
    registration, brain = write_reports(folder, **reports)
    images = {m: paths[m] for m in MODALITIES}
    qc = subject_qc(SUBJECT, images, paths["brain"], reference="t1", registration=registration,
                    brain_report=brain, tumor_mask=paths["tumor"])
    return qc, images, paths


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    return (folder, *run_qc(folder, make_scene()))


def test_clean_subject_has_no_flags_and_the_expected_numbers(clean):
    _, qc, _, _ = clean
    row = qc.row
    assert qc.flags == [] and row["flag"] == ""
    scene = make_scene()
    voxel_ml = np.prod(VOXEL) / 1000
    assert row["brain_ml"] == pytest.approx((scene["brain"] > 0).sum() * voxel_ml, abs=0.1)
    assert row["tumor_ml"] == pytest.approx((scene["tumor"] > 0).sum() * voxel_ml, abs=0.01)
    assert row["tumor_in_brain"] == 1.0 and row["brain_backend"] == "deepbet"
    assert row["mi_before_t1"] == "" and row["mi_after_t2"] == -0.8 and row["mi_before_flair"] == -0.5
    brain = scene["brain"] > 0
    for m in MODALITIES:
        assert row[f"coverage_{m}"] == 1.0
        assert row[f"mean_{m}"] == pytest.approx(scene[m][brain].mean(), rel=1e-4)
        assert row[f"p99_{m}"] == pytest.approx(np.percentile(scene[m][brain], 99), rel=1e-4)
    # the montage slices go through the tumor's centre (canonical voxel indices)
    centre = np.argwhere(scene["tumor"] > 0).mean(0)
    assert np.abs(np.array(qc.centre) - centre).max() <= 0.5


def test_broken_subject_is_flagged_with_the_reasons(tmp_path):
    scene = make_scene(tumor_centre=(80.0, 0.0, 0.0))  # tumor in the skull, off the brain
    scene["t2"][:, :, : scene["t2"].shape[2] // 2] = 0  # t2 misses the lower half of the head
    qc, _, _ = run_qc(tmp_path, scene, mi={"t2": (-0.4, -0.8), "flair": (-0.5, -0.3)},
                      brain_flag="implausible brain mask: brain volume 3100 mL outside 800-2200 mL")
    text = qc.row["flag"]
    assert "implausible brain mask: brain volume 3100 mL" in text
    assert "% of the tumor lies inside the brain mask" in text
    assert "flair: registration lowered the mutual information (MI -0.500 -> -0.300)" in text
    assert "t2: no signal in" in text and qc.row["coverage_t2"] < MIN_COVERAGE
    assert len(qc.flags) == 4 and text == "; ".join(qc.flags)


def test_montage_labels_say_which_mi_is_better():
    row = {"reference": "t1ce", "mi_before_t2": -0.5512, "mi_after_t2": -1.1634, "mi_after_t1": ""}
    assert modality_label(row, "t2") == "t2\nMI -0.55 → -1.16\n(lower = better aligned)"
    assert modality_label(row, "t1ce") == "t1ce (reference)" and modality_label(row, "t1") == "t1"


def test_subject_without_tumor_mask_gets_a_qc_through_the_brain_centre(clean, tmp_path):
    folder, _, images, paths = clean
    registration, brain = write_reports(tmp_path)
    qc = subject_qc(SUBJECT, images, paths["brain"], reference="t1", registration=registration, brain_report=brain)
    assert qc.row["tumor_ml"] == "" and qc.flags == []
    centre = np.argwhere(make_scene()["brain"] > 0).mean(0)
    assert np.abs(np.array(qc.centre) - centre).max() <= 0.5
    plot_montage(qc, images, paths["brain"], tmp_path / "qc.png")
    assert (tmp_path / "qc.png").stat().st_size > 10_000


def red_text_pixels(png: Path) -> int:
    rgb = matplotlib.image.imread(png)[..., :3]
    return int(((rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.2) & (rgb[..., 2] < 0.2)).sum())


def test_montage_shows_flags_in_red(clean, tmp_path):
    folder, qc, images, paths = clean
    plot_montage(qc, images, paths["brain"], tmp_path / "clean.png", tumor_mask=paths["tumor"])
    rgb = matplotlib.image.imread(tmp_path / "clean.png")[..., :3]
    assert rgb.shape[0] > rgb.shape[1] > 500  # a row per modality, three views each
    magenta = (rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.2) & (rgb[..., 2] > 0.8)
    cyan = (rgb[..., 0] < 0.2) & (rgb[..., 1] > 0.8) & (rgb[..., 2] > 0.8)
    assert magenta.sum() > 50 and cyan.sum() > 200  # tumor and brain outlines drawn
    assert red_text_pixels(tmp_path / "clean.png") == 0

    qc.flags.append("t2: no signal in 40% of the brain (field of view or registration)")
    try:
        plot_montage(qc, images, paths["brain"], tmp_path / "flagged.png", tumor_mask=paths["tumor"])
    finally:
        qc.flags.pop()
    assert red_text_pixels(tmp_path / "flagged.png") > 100


def test_second_opinion_is_in_the_row_and_outlined_in_the_montage(tmp_path):
    """brain.tsv's second-opinion columns reach the QC row; the montage outlines both masks: the
    second one (here the brain shifted by 12 mm) dashed in yellow, named with its Dice."""
    scene = make_scene()
    paths = write_scene(scene, tmp_path)
    registration, brain_report = write_reports(tmp_path)
    flag = "implausible brain mask: hdbet and deepbet disagree (Dice 0.81 < 0.9; 1400 vs 1900 mL)"
    brain_report.write_text("subject\tbackend\tbrain_ml\tsecond_backend\tsecond_ml\tagreement_dice\tflag\n"
                            f"{SUBJECT}\thdbet\t1400\tdeepbet\t1900\t0.81\t{flag}\n")
    second = tmp_path / "second.nii.gz"
    import nibabel as nib

    brain_img = nib.load(paths["brain"])
    shift = int(round(12 / VOXEL[0]))
    nib.save(nib.Nifti1Image(np.roll(np.asarray(brain_img.dataobj), shift, axis=0), brain_img.affine), second)
    images = {m: paths[m] for m in MODALITIES}
    qc = subject_qc(SUBJECT, images, paths["brain"], reference="t1", registration=registration,
                    brain_report=brain_report, tumor_mask=paths["tumor"])
    assert (qc.row["second_backend"], qc.row["second_ml"], qc.row["agreement_dice"]) == ("deepbet", "1900", "0.81")
    assert flag in qc.flags
    plot_montage(qc, images, paths["brain"], tmp_path / "with.png", tumor_mask=paths["tumor"])
    plot_montage(qc, images, paths["brain"], tmp_path / "both.png", tumor_mask=paths["tumor"], second_mask=second)

    def yellow(png: Path) -> int:
        rgb = matplotlib.image.imread(png)[..., :3]
        return int(((rgb[..., 0] > 0.8) & (rgb[..., 1] > 0.8) & (rgb[..., 2] < 0.2)).sum())

    assert yellow(tmp_path / "both.png") > yellow(tmp_path / "with.png") + 200


def test_cohort_table_flags_outliers_and_puts_flagged_subjects_first():
    rows = []
    rng = np.random.default_rng(0)
    for i in range(8):
        rows.append(pd.DataFrame([{"subject": f"s{i}", "reference": "t1", "brain_ml": 1400 + rng.normal(0, 40),
                                   "mi_after_t2": -0.8 + rng.normal(0, 0.02), "mi_after_t1": np.nan,
                                   "mean_t1": 600.0, "sd_t1": 150 + rng.normal(0, 5), "flag": np.nan}]))
    rows[3]["brain_ml"] = 450.0  # half the brain missed
    rows[5]["mi_after_t2"] = -0.2  # registration failed
    rows[6]["flag"] = "only 40% of the tumor lies inside the brain mask"
    rows[7]["sd_t1"] = 420.0  # bias correction gone wrong: sd/mean 0.70 instead of 0.25
    rows[1]["mi_after_t2"] = -0.72  # far in z (tiny MAD) but within MIN_MI_DEVIATION: not flagged
    table = summarize_cohort(rows, ["t1", "t2"])
    assert list(table.columns[:3]) == ["subject", "flag", "n_flags"]
    assert list(table["subject"][:4]) == ["s3", "s5", "s6", "s7"] and (table["n_flags"][4:] == 0).all()
    flags = dict(zip(table["subject"], table["flag"]))
    assert re.fullmatch(r"brain volume 450 mL is a cohort outlier \(median 1[34]\d\d mL\)", flags["s3"])
    assert flags["s5"].startswith("t2: MI after registration -0.200 is a cohort outlier")
    assert flags["s6"] == "only 40% of the tumor lies inside the brain mask"
    assert flags["s7"].startswith("t1: intensity spread in the brain (sd/mean) 0.700 is a cohort outlier")
    assert table.loc[table["subject"] == "s7", "cv_t1"].item() == 0.7
    # too few subjects for cohort statistics: only the subjects' own flags
    small = summarize_cohort(rows[3:6], ["t1", "t2"])
    assert list(small["n_flags"]) == [0, 0, 0]
