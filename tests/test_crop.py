"""oncoflow.crop.tumor_crop: tumor-centred, brain-normalised crops cached as .npz.

A synthetic scene with known geometry (ellipsoid brain, skull, spherical tumor near the brain's
edge, three contrasts) checks shape, centring, normalisation, per-slice tumor area and that voxel
order on disk does not matter; the real TCGA exam (../shared/data, skipped when absent) checks the
same on real anatomy; bad masks must raise CropError naming subject and file.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from oncoflow.crop.tumor_crop import CropError, CropSpec, crop_subject, normalise_in_brain

SUBJECT = "sub-0042"
SHAPE = (90, 100, 40)
VOXEL = (2.0, 2.0, 3.5)
BRAIN_RADII = np.array([68.0, 82.0, 60.0])
TUMOR_CENTRE = np.array([50.0, -10.0, 10.0])  # mm, off the volume's centre, near the brain's edge
TUMOR_RADIUS = 12.0
VALUES = {"t1": (500.0, 60.0, 1100.0), "t2": (700.0, 50.0, 200.0)}  # brain mean, brain sd, tumor
SKULL = 1500.0


def affine() -> np.ndarray:
    aff = np.diag([*VOXEL, 1.0])
    aff[:3, 3] = -(np.array(SHAPE) - 1) / 2 * np.array(VOXEL)  # volume centred on 0 mm
    return aff


def world_mm() -> np.ndarray:
    idx = np.indices(SHAPE).reshape(3, -1).T
    return (idx * np.array(VOXEL) + affine()[:3, 3]).reshape(*SHAPE, 3)


def make_scene(tumor_centre=TUMOR_CENTRE, seed: int = 0) -> dict[str, np.ndarray]:
    """Canonical (RAS) arrays: brain, tumor, and t1 / flair (= 2.5 t1 + 300) / t2 images."""
    xyz = world_mm()
    brain = (((xyz / BRAIN_RADII) ** 2).sum(-1) <= 1.0)
    tumor = np.linalg.norm(xyz - np.asarray(tumor_centre), axis=-1) <= TUMOR_RADIUS
    skull = ndimage.binary_dilation(brain, iterations=4) & ~brain
    rng = np.random.default_rng(seed)
    scene = {"brain": brain.astype(np.float32), "tumor": tumor.astype(np.float32)}
    for modality, (mean, sd, tumor_value) in VALUES.items():
        img = np.where(brain, rng.normal(mean, sd, SHAPE), 0.0)
        img[tumor & brain] = tumor_value
        img[skull] = SKULL
        background = ~(brain | skull)
        img[background] = rng.normal(0, 2, background.sum()) ** 2  # noisy air
        scene[modality] = img.astype(np.float32)
    scene["flair"] = (2.5 * scene["t1"] + 300.0).astype(np.float32)
    return scene


def write_scene(scene: dict[str, np.ndarray], folder: Path, axcodes: str = "RAS",
                overrides: dict[str, nib.Nifti1Image] | None = None) -> dict[str, Path]:
    """Write every array as NIfTI with voxel axes in ``axcodes`` order (same physical scene)."""
    folder.mkdir(parents=True, exist_ok=True)
    tf = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                         nib.orientations.axcodes2ornt(tuple(axcodes)))
    paths = {}
    for name, arr in scene.items():
        img = nib.Nifti1Image(arr, affine()).as_reoriented(tf)
        img = (overrides or {}).get(name, img)
        paths[name] = folder / f"{name}.nii.gz"
        nib.save(img, paths[name])
    return paths


def run_crop(paths: dict[str, Path], out: Path, spec: CropSpec = CropSpec(),  # noqa: B008 (frozen dataclass)
             modalities=("t1", "flair", "t2")) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    stats = crop_subject(SUBJECT, {m: paths[m] for m in modalities}, paths["brain"], paths["tumor"], out, spec)
    with np.load(out) as npz:
        return stats, {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    return make_scene()


@pytest.fixture(scope="module")
def cropped(scene, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    paths = write_scene(scene, folder / "nifti")
    stats, arrays = run_crop(paths, folder / "crop" / "crop.npz")
    return stats, arrays


# --- the synthetic scene ------------------------------------------------------------------------------------


def test_scene_is_what_the_crop_tests_assume(scene):
    brain, tumor = scene["brain"] > 0, scene["tumor"] > 0
    assert (tumor & brain).sum() == tumor.sum()  # the tumor lies in the brain...
    crop_half_width = (2 * TUMOR_RADIUS + 2 * 10.0) / 2
    assert TUMOR_CENTRE[0] + crop_half_width > BRAIN_RADII[0]  # ...but its crop reaches the skull


def test_crop_arrays_and_shapes(cropped, scene):
    stats, arrays = cropped
    spec = CropSpec()
    assert set(arrays) == {"image_t1", "image_flair", "image_t2", "tumor", "tumor_area", "pixel_mm", "slice_mm",
                           "crop_affine", "reference_affine", "reference_shape"}
    tumor_slices = np.nonzero((scene["tumor"] > 0).any(axis=(0, 1)))[0]
    margin = int(np.ceil(spec.margin_mm / VOXEL[2]))
    depth = tumor_slices.max() - tumor_slices.min() + 1 + 2 * margin
    for name in ("image_t1", "image_flair", "image_t2", "tumor"):
        assert arrays[name].shape == (depth, spec.size, spec.size), name
    assert arrays["image_t1"].dtype == np.float32 and arrays["tumor"].dtype == np.uint8
    assert arrays["tumor_area"].shape == (depth,)
    assert float(arrays["slice_mm"]) == pytest.approx(VOXEL[2])
    assert stats["depth"] == depth and stats["brain_overlap"] == 1.0
    # field of view: tumor extent + 2 margins, square
    extent_mm = (np.ptp(np.nonzero(scene["tumor"] > 0)[0]) + 1) * VOXEL[0]
    assert stats["fov_mm"] == pytest.approx(extent_mm + 2 * spec.margin_mm)
    assert float(arrays["pixel_mm"]) == pytest.approx(stats["fov_mm"] / spec.size)
    true_ml = 4 / 3 * np.pi * TUMOR_RADIUS**3 / 1000
    assert stats["tumor_ml"] == pytest.approx((scene["tumor"] > 0).sum() * np.prod(VOXEL) / 1000)
    assert stats["tumor_ml"] == pytest.approx(true_ml, rel=0.1)


def test_tumor_is_centred(cropped):
    _, arrays = cropped
    size = arrays["tumor"].shape[1]
    _, ix, iy = np.nonzero(arrays["tumor"])
    centre = (size - 1) / 2
    assert abs(ix.mean() - centre) < 1.0 and abs(iy.mean() - centre) < 1.0, (ix.mean(), iy.mean())
    # the bright tumor in the t1 crop sits at the same place as the mask
    bright = arrays["image_t1"] > 0.5 * arrays["image_t1"].max()
    _, bx, by = np.nonzero(bright)
    assert abs(bx.mean() - centre) < 1.0 and abs(by.mean() - centre) < 1.0


def test_tumor_area_per_slice(cropped, scene):
    _, arrays = cropped
    area = arrays["tumor_area"]
    assert np.array_equal(area, arrays["tumor"].sum(axis=(1, 2)))
    margin = int(np.ceil(CropSpec().margin_mm / VOXEL[2]))
    assert np.all(area[:margin] == 0) and np.all(area[-margin:] == 0) and np.all(area[margin:-margin] > 0)
    # in mm^2, each slice's tumor area matches the source slice's (nearest-neighbour resampling)
    source_mm2 = (scene["tumor"] > 0).sum(axis=(0, 1)) * VOXEL[0] * VOXEL[1]
    source_mm2 = source_mm2[source_mm2 > 0]
    crop_mm2 = area[margin:-margin] * float(arrays["pixel_mm"]) ** 2
    large = source_mm2 > 0.3 * source_mm2.max()
    np.testing.assert_allclose(crop_mm2[large], source_mm2[large], rtol=0.1)
    assert np.argmax(area) in range(len(area) // 2 - 2, len(area) // 2 + 3)  # sphere: largest in the middle


def test_images_are_normalised_inside_the_brain_and_zero_outside(cropped, scene):
    _, arrays = cropped
    brain = scene["brain"] > 0
    tumor_crop = arrays["tumor"] > 0
    core = ndimage.binary_erosion(tumor_crop, structure=np.ones((1, 5, 5)))
    assert core.sum() > 100
    for modality in ("t1", "t2"):
        values = scene[modality][brain]
        expected = (VALUES[modality][2] - values.mean()) / values.std()
        crop = arrays[f"image_{modality}"]
        np.testing.assert_allclose(crop[core], expected, rtol=1e-3, err_msg=modality)
    # flair = 2.5 t1 + 300: a z-score inside the brain does not see the scanner's scale
    np.testing.assert_allclose(arrays["image_flair"], arrays["image_t1"], atol=1e-4)
    # The crop reaches past the brain's edge, onto the skull (1500, brighter than anything inside):
    # there the image must be exactly zero, not a skull z-score.
    t1 = arrays["image_t1"]
    assert (t1 == 0).sum() > 200
    z_tumor = (VALUES["t1"][2] - scene["t1"][brain].mean()) / scene["t1"][brain].std()
    assert t1.max() <= z_tumor + 1e-3
    assert not np.array_equal(arrays["image_t2"], t1) and arrays["image_t2"][core].max() < 0


def test_normalise_in_brain_is_a_brain_z_score(scene):
    brain = scene["brain"] > 0
    out = normalise_in_brain(scene["t1"], brain)
    assert out[brain].mean() == pytest.approx(0.0, abs=1e-4)
    assert out[brain].std() == pytest.approx(1.0, abs=1e-4)
    assert np.all(out[~brain] == 0)


def test_voxel_order_on_disk_does_not_change_the_crop(scene, cropped, tmp_path):
    """The same scene stored sagittally (P, S, L voxel axes) gives the identical crop."""
    _, reference = cropped
    paths = write_scene(scene, tmp_path / "psl", axcodes="PSL")
    assert nib.aff2axcodes(nib.load(paths["t1"]).affine) == ("P", "S", "L")
    _, arrays = run_crop(paths, tmp_path / "crop.npz")
    assert set(arrays) == set(reference)
    for key in set(reference) - {"reference_affine", "reference_shape"}:  # the stored grid's own, below
        np.testing.assert_allclose(arrays[key], reference[key], atol=1e-5, err_msg=key)
    assert tuple(arrays["reference_shape"]) == nib.load(paths["t1"]).shape
    np.testing.assert_allclose(arrays["reference_affine"], nib.load(paths["t1"]).affine)


@pytest.mark.parametrize("axcodes", ["RAS", "PSL"])
def test_the_crop_grid_maps_back_onto_the_stored_image(scene, tmp_path, axcodes):
    """crop_affine places each crop voxel in world mm: the crop's tumor mask put back onto the
    stored image's grid (oncoflow.explain.outputs.reference_grid_map) is the scene's tumor mask,
    whatever the voxel order on disk, and a crop voxel's world point is where the scene has it."""
    from oncoflow.explain.outputs import reference_grid_map

    paths = write_scene(scene, tmp_path / axcodes, axcodes=axcodes)
    _, arrays = run_crop(paths, tmp_path / "crop.npz")
    back = reference_grid_map(arrays["tumor"].astype(np.float32), tmp_path / "crop.npz")
    stored = nib.load(paths["tumor"])
    assert back.shape == stored.shape and np.allclose(back.affine, stored.affine)
    mapped, truth = np.asarray(back.dataobj) > 0.5, np.asarray(stored.dataobj) > 0.5
    assert 2 * (mapped & truth).sum() / (mapped.sum() + truth.sum()) > 0.9
    k, i, j = np.argwhere(arrays["tumor"]).mean(axis=0)  # the crop's tumor centre, in crop voxels
    error = np.abs((arrays["crop_affine"] @ [i, j, k, 1])[:3] - TUMOR_CENTRE)  # half a crop pixel is 0.34 mm
    assert (error < [0.1, 0.1, VOXEL[2] / 4]).all(), error  # measured: 0, 0, 0.26 mm (the sphere's slices)


def test_whole_brain_region_holds_the_whole_brain_and_the_tumor_off_centre(scene, tmp_path):
    """region brain (whole-brain models): field of view = the brain's bounding box + margins, every
    brain slice, nothing of the brain cut off; the tumor mask comes along where it lies."""
    paths = write_scene(scene, tmp_path / "nifti")
    spec = CropSpec(size=48, margin_mm=6.0, region="brain")
    stats, arrays = run_crop(paths, tmp_path / "crop.npz", spec, modalities=("t1",))
    brain = scene["brain"] > 0
    idx = np.nonzero(brain)
    extent_mm = max((np.ptp(idx[0]) + 1) * VOXEL[0], (np.ptp(idx[1]) + 1) * VOXEL[1])
    assert stats["fov_mm"] == pytest.approx(extent_mm + 2 * 6.0)
    margin = int(np.ceil(6.0 / VOXEL[2]))
    brain_slices = np.ptp(idx[2]) + 1
    assert arrays["image_t1"].shape == (min(brain_slices + 2 * margin, SHAPE[2]), 48, 48)
    # every brain voxel's slice made it, and the crop's border (skull/air) is zero: no brain cut off
    t1 = arrays["image_t1"]
    assert np.all(t1[:, 0, :] == 0) and np.all(t1[:, -1, :] == 0)
    assert np.all(t1[:, :, 0] == 0) and np.all(t1[:, :, -1] == 0)
    # the tumor (x = +50 mm, i.e. right of centre) is in the crop, off its centre
    _, ix, _ = np.nonzero(arrays["tumor"])
    assert arrays["tumor_area"].sum() > 0 and ix.mean() > 48 * 0.7
    tumor_crop_ml = arrays["tumor"].sum() * float(arrays["pixel_mm"]) ** 2 * VOXEL[2] / 1000
    assert tumor_crop_ml == pytest.approx(stats["tumor_ml"], rel=0.15)
    with pytest.raises(ValueError, match="crop region 'head'"):
        CropSpec(region="head")


def test_crop_size_and_margin_follow_the_spec(scene, tmp_path):
    paths = write_scene(scene, tmp_path / "nifti")
    spec = CropSpec(size=32, margin_mm=4.0)
    stats, arrays = run_crop(paths, tmp_path / "crop.npz", spec, modalities=("t1",))
    margin = int(np.ceil(4.0 / VOXEL[2]))
    assert arrays["image_t1"].shape[1:] == (32, 32)
    assert stats["fov_mm"] == spec.min_fov_mm  # 26 mm tumor + 2 x 4 mm < 40 mm: small tumors keep context
    assert np.all(arrays["tumor_area"][:margin] == 0) and arrays["tumor_area"][margin] > 0


# --- errors ---------------------------------------------------------------------------------------------------


def assert_crop_error(paths: dict[str, Path], out: Path, culprit: Path, *fragments: str) -> str:
    with pytest.raises(CropError) as info:
        run_crop(paths, out)
    message = str(info.value)
    assert message.startswith(f"[{SUBJECT}] {culprit}:"), message
    for fragment in fragments:
        assert fragment in message, message
    assert not out.exists()
    return message


def test_tumor_outside_the_brain_raises_naming_the_subject(tmp_path):
    outside = make_scene(tumor_centre=(80.0, 0.0, 0.0))  # in the skull and scalp, off the brain
    paths = write_scene(outside, tmp_path / "nifti")
    assert_crop_error(paths, tmp_path / "crop.npz", paths["tumor"], "0% of the tumor lies inside the brain")


def test_tumor_half_outside_the_brain_raises(tmp_path):
    scene = make_scene(tumor_centre=(72.0, 0.0, 0.0))
    inside = ((scene["tumor"] > 0) & (scene["brain"] > 0)).sum() / (scene["tumor"] > 0).sum()
    assert 0.1 < inside < CropSpec().min_brain_overlap
    paths = write_scene(scene, tmp_path / "nifti")
    assert_crop_error(paths, tmp_path / "crop.npz", paths["tumor"], f"only {inside:.0%}", "wrong space")


def test_empty_tumor_mask_raises(scene, tmp_path):
    paths = write_scene({**scene, "tumor": np.zeros(SHAPE, np.float32)}, tmp_path / "nifti")
    assert_crop_error(paths, tmp_path / "crop.npz", paths["tumor"], "tumor mask is empty")


def test_tumor_mask_on_another_grid_raises(scene, tmp_path):
    smaller = nib.Nifti1Image(scene["tumor"][:, :, :36], affine())
    paths = write_scene(scene, tmp_path / "nifti", overrides={"tumor": smaller})
    assert_crop_error(paths, tmp_path / "crop.npz", paths["tumor"], "tumor mask grid", "!= brain grid")


def test_tumor_mask_with_the_same_shape_but_shifted_raises(scene, tmp_path):
    """Same matrix, origin 20 mm off (a mask drawn on another series): a same-shaped grid is not
    the same grid."""
    shifted_affine = affine()
    shifted_affine[0, 3] += 20.0
    shifted = nib.Nifti1Image(scene["tumor"], shifted_affine)
    paths = write_scene(scene, tmp_path / "nifti", overrides={"tumor": shifted})
    assert_crop_error(paths, tmp_path / "crop.npz", paths["tumor"], "voxel-to-mm mapping")


def test_image_on_another_grid_raises_naming_the_image(scene, tmp_path):
    coarse = nib.Nifti1Image(scene["t2"][::2, ::2, ::2], affine() @ np.diag([2, 2, 2, 1]))
    paths = write_scene(scene, tmp_path / "nifti", overrides={"t2": coarse})
    assert_crop_error(paths, tmp_path / "crop.npz", paths["t2"], "t2 grid")


# --- real anatomy ---------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_crop_of_a_real_glioma(shared_data, tmp_path):
    """TCGA-FG-6692 in SRI24 space (skull-stripped: brain = T1 > 0) with its BraTS segmentation."""
    folder = shared_data / "tcga_glioma" / "TCGA-FG-6692" / "sri24"
    if not (folder / "tumor_seg.nii.gz").exists():
        pytest.skip(f"{folder} not found (only in the development checkout)")
    t1 = nib.load(folder / "t1.nii.gz")
    seg = np.asarray(nib.load(folder / "tumor_seg.nii.gz").dataobj)
    brain_path, tumor_path = tmp_path / "brain_mask.nii.gz", tmp_path / "tumor_mask.nii.gz"
    nib.save(nib.Nifti1Image((np.asarray(t1.dataobj) > 0).astype(np.uint8), t1.affine), brain_path)
    nib.save(nib.Nifti1Image((seg > 0).astype(np.uint8), t1.affine), tumor_path)
    images = {m: folder / f"{m}.nii.gz" for m in ("t1", "t1ce", "t2", "flair")}
    out = tmp_path / "crop.npz"
    stats = crop_subject(SUBJECT, images, brain_path, tumor_path, out)
    with np.load(out) as npz:
        arrays = {k: npz[k] for k in npz.files}
    size = CropSpec().size
    depth = arrays["tumor"].shape[0]
    assert all(arrays[f"image_{m}"].shape == (depth, size, size) for m in images)
    z_extent = np.ptp(np.nonzero((seg > 0).any(axis=(0, 1)))[0]) + 1
    assert depth == z_extent + 2 * 10  # 1 mm slices, 10 mm margin each side
    assert stats["brain_overlap"] > 0.99
    assert stats["tumor_ml"] == pytest.approx((seg > 0).sum() / 1000)
    _, ix, iy = np.nonzero(arrays["tumor"])
    centre = (size - 1) / 2
    assert abs(ix.mean() - centre) < 0.1 * size and abs(iy.mean() - centre) < 0.1 * size, (ix.mean(), iy.mean())
    assert np.array_equal(arrays["tumor_area"], arrays["tumor"].sum(axis=(1, 2)))
    # Real contrast after brain normalisation: the tumor (mostly edema) is bright on FLAIR compared
    # with the brain around it in the crop (measured: z 1.7 vs 0.0), less so on T2 (0.5 vs 0.15).
    tumor = arrays["tumor"] > 0
    z = {}
    for m in ("flair", "t2"):
        img = arrays[f"image_{m}"]
        around = (~tumor) & (img != 0)
        z[m] = (float(img[tumor].mean()), float(img[around].mean()))
    print("mean z in tumor vs surrounding brain:", {m: tuple(round(v, 2) for v in zz) for m, zz in z.items()})
    assert z["flair"][0] > z["flair"][1] + 1.0 and z["t2"][0] > z["t2"][1] + 0.1, z


@pytest.mark.shared_data
def test_fixed_field_of_view_keeps_the_physical_size_of_real_tumors(shared_data, tmp_path):
    """Two TCGA gliomas in SRI24 space (1 mm voxels): in-plane tumor extents 37 x 44 mm (DU-7294)
    and 43 x 59 mm (FG-6692). With crop.field_of_view_mm every crop has the same pixel size and the
    larger tumor spans more pixels, by its physical size; the default field follows the tumor."""
    fixed, default = {}, {}
    for subject in ("TCGA-DU-7294", "TCGA-FG-6692"):
        folder = shared_data / "tcga_glioma" / subject / "sri24"
        if not (folder / "tumor_seg.nii.gz").exists():
            pytest.skip(f"{folder} not found (only in the development checkout)")
        t1 = nib.load(folder / "t1.nii.gz")
        seg = np.asarray(nib.load(folder / "tumor_seg.nii.gz").dataobj) > 0
        brain_path, tumor_path = tmp_path / f"{subject}_brain.nii.gz", tmp_path / f"{subject}_tumor.nii.gz"
        nib.save(nib.Nifti1Image((np.asarray(t1.dataobj) > 0).astype(np.uint8), t1.affine), brain_path)
        nib.save(nib.Nifti1Image(seg.astype(np.uint8), t1.affine), tumor_path)
        xs, ys, _ = np.nonzero(seg)
        true_mm = max(np.ptp(xs) + 1, np.ptp(ys) + 1)  # 1 mm voxels
        for spec, found in ((CropSpec(size=64, field_of_view_mm=120.0), fixed), (CropSpec(size=64), default)):
            out = tmp_path / f"{subject}_{len(found)}_{spec.field_of_view_mm}.npz"
            stats = crop_subject(subject, {"flair": folder / "flair.nii.gz"}, brain_path, tumor_path, out, spec)
            with np.load(out) as npz:
                _, ix, iy = np.nonzero(npz["tumor"])
                pixel_mm = float(npz["pixel_mm"])
            found[subject] = (max(np.ptp(ix) + 1, np.ptp(iy) + 1), pixel_mm, true_mm, stats["fov_mm"])
    print("tumor extent in the crop (pixels, pixel mm, true mm, field mm):", fixed, default)
    (small_px, small_mm, small_true, _), (large_px, large_mm, large_true, _) = fixed.values()
    assert small_mm == large_mm == pytest.approx(120 / 64)  # one physical scale for both patients
    for px, mm, true in ((small_px, small_mm, small_true), (large_px, large_mm, large_true)):
        assert abs(px * mm - true) <= 2 * mm, (px, mm, true)  # the extent in mm is kept
    assert large_px - small_px >= 0.8 * (large_true - small_true) / small_mm  # 59 vs 44 mm: ~8 px apart
    # Default: the field follows each tumor, so the pixel size differs between the two patients.
    assert [v[3] for v in default.values()] == [small_true + 20, large_true + 20]
    assert default["TCGA-DU-7294"][1] != pytest.approx(default["TCGA-FG-6692"][1])


def test_field_of_view_must_be_positive():
    with pytest.raises(ValueError, match="field_of_view_mm"):
        CropSpec(field_of_view_mm=0.0)


def test_tumor_errors_name_the_sample_sheets_mask(tmp_path):
    """In the workflow the crop reads the mask carried onto the reference grid; its errors also name
    the sample sheet's file, the one a user has to fix."""
    paths = write_scene(make_scene(tumor_centre=(80.0, 0.0, 0.0)), tmp_path / "nifti")
    sheet_mask = tmp_path / "masks" / "sub-0042_tumor.nii.gz"
    with pytest.raises(CropError) as info:
        crop_subject(SUBJECT, {"t1": paths["t1"]}, paths["brain"], paths["tumor"], tmp_path / "crop.npz",
                     tumor_mask_source=sheet_mask)
    message = str(info.value)
    assert message.startswith(f"[{SUBJECT}] {paths['tumor']}: only 0% of the tumor lies inside the brain mask")
    assert f"the sample sheet's tumor mask {sheet_mask} on the reference grid" in message
