"""Atlas space (preprocess.atlas): a real exam registered to nilearn's MNI152 lands on the atlas brain,
and its tumor lands where an independent registration of the same patient's SRI24-space BraTS
segmentation puts it; the QC montage shows the subject on the atlas and QC flags a failed registration;
the workflow plans the atlas step only when asked and then crops from atlas/ and draws it in QC."""

from __future__ import annotations

import os

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")

import copy  # noqa: E402
from pathlib import Path  # noqa: E402

import ants  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from workflow_helpers import planned_jobs, run_snakemake, tiny_config, write_config  # noqa: E402

from oncoflow.preprocess.atlas import load_template, register_to_atlas  # noqa: E402
from oncoflow.preprocess.brain import mask_dice  # noqa: E402
from oncoflow.preprocess.qc import MIN_ATLAS_DICE, AtlasView, plot_montage, subject_qc  # noqa: E402

FG6692 = Path("tcga_glioma") / "TCGA-FG-6692"


def need(root: Path, relative: Path) -> Path:
    path = root / relative
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.mark.shared_data
def test_real_exam_lands_on_the_atlas_brain_and_its_tumor_where_sri24_puts_it(shared_data, tmp_path):
    """TCGA-FG-6692 native T1CE (whole head, 5.5 mm slices) with its HD-BET brain mask, to MNI152 (2 mm,
    affine). Its tumor mask on the native grid comes from the SRI24-space BraTS segmentation (affine of
    the SRI24 T1CE onto the native brain); independently, the SRI24 T1CE itself is registered to MNI152
    and carries the segmentation there. Both tumors must overlap in MNI space."""
    native = ants.image_read(str(need(shared_data, FG6692 / "native/t1ce.nii.gz")), pixeltype="float")
    brain_mask = need(shared_data, FG6692 / "native/t1ce_brain_mask_hdbet.nii.gz")
    sri_t1ce = need(shared_data, FG6692 / "sri24/t1ce.nii.gz")
    sri_seg = need(shared_data, FG6692 / "sri24/tumor_seg.nii.gz")
    brain = native * (ants.image_read(str(brain_mask), pixeltype="float") > 0.5)
    ants.image_write(brain, str(tmp_path / "t1ce_brain.nii.gz"))

    # The tumor on the native grid (SRI24 -> native: brain onto brain, affine).
    sri = ants.image_read(str(sri_t1ce), pixeltype="float")
    seg = ants.image_read(str(sri_seg), pixeltype="float") > 0
    to_native = ants.registration(fixed=brain, moving=sri, type_of_transform="Affine", aff_metric="mattes",
                                  random_seed=1)
    tumor = ants.apply_transforms(fixed=native, moving=seg * 1.0, transformlist=to_native["fwdtransforms"],
                                  interpolator="genericLabel")
    ants.image_write(tumor, str(tmp_path / "tumor.nii.gz"))

    out = tmp_path / "atlas"
    row = register_to_atlas("TCGA-FG-6692", {"t1ce": tmp_path / "t1ce_brain.nii.gz"}, brain_mask,
                            tmp_path / "tumor.nii.gz", reference="t1ce", outputs={"t1ce": out / "t1ce.nii.gz"},
                            mask_out=out / "brain_mask.nii.gz", tumor_out=out / "tumor_mask.nii.gz",
                            transform_out=out / "reference_to_atlas.mat", report=out / "atlas.tsv",
                            resolution_mm=2)
    template, template_mask = load_template("mni152", resolution_mm=2)
    warped = ants.image_read(str(out / "t1ce.nii.gz"))
    assert warped.shape == template.shape and np.allclose(warped.spacing, (2, 2, 2))

    # The same patient's SRI24 segmentation, carried to MNI152 by its own registration.
    sri_to_mni = ants.registration(fixed=template, moving=sri, type_of_transform="Affine", aff_metric="mattes",
                                   random_seed=1)
    seg_mni = ants.apply_transforms(fixed=template, moving=seg * 1.0, transformlist=sri_to_mni["fwdtransforms"],
                                    interpolator="genericLabel").numpy() > 0.5
    tumor_mni = ants.image_read(str(out / "tumor_mask.nii.gz")).numpy() > 0.5
    tumor_dice = mask_dice(tumor_mni, seg_mni)
    centres = [np.argwhere(m).mean(0) * 2.0 for m in (tumor_mni, seg_mni)]
    distance = float(np.linalg.norm(centres[0] - centres[1]))
    print(f"TCGA-FG-6692 native -> MNI152 2 mm affine: brain-mask Dice {row['brain_dice_template']} "
          f"(MI {row['mi_before']} -> {row['mi_after']}, {row['seconds']} s); tumor Dice {tumor_dice:.3f} "
          f"with the SRI24 segmentation mapped to MNI152 on its own, centres {distance:.1f} mm apart, "
          f"{tumor_mni.sum() * 8 / 1000:.1f} vs {seg_mni.sum() * 8 / 1000:.1f} mL")
    assert row["brain_dice_template"] >= 0.9, row
    assert tumor_dice >= 0.7 and distance <= 5.0, (tumor_dice, distance)


def atlas_qc(subject_dir: Path, brain: Path, brain_mask: Path, out: Path):
    """register_to_atlas (MNI152 2 mm) of ``brain`` (t1ce), then the subject's QC row and montage."""
    paths = {k: out / "atlas" / f"{k}.nii.gz" for k in ("t1ce", "brain_mask", "tumor_mask", "template_mask")}
    register_to_atlas("demo001", {"t1ce": brain}, brain_mask, subject_dir / "coreg/tumor_mask.nii.gz",
                      reference="t1ce", outputs={"t1ce": paths["t1ce"]}, mask_out=paths["brain_mask"],
                      tumor_out=paths["tumor_mask"], transform_out=out / "atlas/reference_to_atlas.mat",
                      report=out / "atlas/atlas.tsv", template_mask_out=paths["template_mask"], resolution_mm=2)
    images = {m: subject_dir / f"coreg/{m}.nii.gz" for m in ("t1", "t1ce", "t2", "flair")}
    kwargs = {"tumor_mask": subject_dir / "coreg/tumor_mask.nii.gz"}
    qc = subject_qc("demo001", images, subject_dir / "brain/brain_mask.nii.gz", reference="t1ce",
                    registration=subject_dir / "coreg/registration.tsv", brain_report=subject_dir / "brain/brain.tsv",
                    atlas_report=out / "atlas/atlas.tsv", **kwargs)
    atlas = AtlasView(paths["t1ce"], paths["brain_mask"], paths["template_mask"], paths["tumor_mask"])
    plot_montage(qc, images, subject_dir / "brain/brain_mask.nii.gz", out / "with_atlas.png", atlas=atlas, **kwargs)
    plot_montage(qc, images, subject_dir / "brain/brain_mask.nii.gz", out / "without.png", **kwargs)
    return qc


def test_qc_montage_shows_the_atlas_and_flags_a_failed_registration(finished_run, tmp_path):
    """A demo head (the tiny run's brain/ and coreg/ outputs) lands on MNI152: atlas Dice in the QC row,
    no flag, and a fifth montage row. The same head with its anterior-posterior and superior-inferior
    voxel axes swapped (a slice-orientation header error) cannot be registered by an affine: flagged.
    Measured (demo001, tiny cohort): Dice 0.957 vs 0.839 swapped (0.894 flipped upside down)."""
    import nibabel as nib
    from PIL import Image

    subject = finished_run / "results/demo/subjects/demo001"
    qc = atlas_qc(subject, subject / "brain/t1ce.nii.gz", subject / "brain/brain_mask.nii.gz", tmp_path / "good")
    print(f"demo001 on MNI152: brain Dice {qc.row['atlas_dice']}")
    assert qc.row["atlas_dice"] >= MIN_ATLAS_DICE and not qc.flags, qc.row
    heights = [Image.open(tmp_path / "good" / f"{name}.png").size[1] for name in ("without", "with_atlas")]
    assert heights[1] - heights[0] >= 200, heights  # one more row of slices (2.7 in at 90 dpi)

    for name in ("t1ce", "brain_mask"):
        img = nib.load(subject / f"brain/{name}.nii.gz")
        swapped = np.swapaxes(np.asarray(img.dataobj), 1, 2).copy()
        nib.save(nib.Nifti1Image(swapped, img.affine, img.header), tmp_path / f"swapped_{name}.nii.gz")
    qc = atlas_qc(subject, tmp_path / "swapped_t1ce.nii.gz", tmp_path / "swapped_brain_mask.nii.gz",
                  tmp_path / "swapped")
    print(f"demo001 with swapped axes on MNI152: brain Dice {qc.row['atlas_dice']}")
    assert qc.row["atlas_dice"] < MIN_ATLAS_DICE, qc.row
    assert any(flag.startswith("atlas: brain mask Dice") for flag in qc.flags), qc.flags


def test_atlas_space_is_planned_only_when_asked_and_crops_then_read_it(tmp_path, tiny_cohort):
    import shutil

    shutil.copytree(tiny_cohort.parent, tmp_path / "data" / "demo")
    config = tiny_config()
    write_config(tmp_path, config)
    crop = "results/demo/subjects/demo001/crop/crop.npz"
    result = run_snakemake(tmp_path, "-n", "--cores", "1", crop)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "register_to_atlas" not in planned_jobs(result.stdout)

    config = copy.deepcopy(config)
    config["preprocess"]["atlas"] = {"activate": True, "resolution_mm": 2}
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "-n", "--cores", "1", "-p", crop)
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result.stdout).get("register_to_atlas") == 1, result.stdout[-3000:]
    assert "subjects/demo001/atlas/tumor_mask.nii.gz" in result.stdout
    # ... and the QC montage draws the subject on the atlas.
    result = run_snakemake(tmp_path, "-n", "--cores", "1", "results/demo/qc/demo001.png")
    montage = result.stdout.split("rule plot_qc_montage:", 1)[-1].split("\n\n", 1)[0]
    assert result.returncode == 0 and "atlas/template_mask.nii.gz" in montage, result.stdout[-3000:]

    config["preprocess"]["atlas"]["template"] = str(tmp_path / "missing.nii.gz")
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "-n", "--cores", "1", crop)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "preprocess.atlas.template" in output, output[-3000:]
    assert "missing.nii.gz is not a file" in output
