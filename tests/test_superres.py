"""3D super-resolution: grid geometry, baselines, the GAN starting as linear interpolation, the
subject-level application, checkpoints, and the GAN beating interpolation on real held-out MRI."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from oncoflow.superres.baseline import interpolate, upsample_mask
from oncoflow.superres.degrade import SuperResError, degrade, split_subjects, upsampled_affine
from oncoflow.superres.evaluate import apply_to_subject, evaluate_heldout
from oncoflow.superres.gan import GanConfig, Generator, load_checkpoint, save_checkpoint, train_generator, upsample
from oncoflow.superres.metrics import quality
from oncoflow.superres.subject import interpolate_subject


def test_degrade_and_grid_geometry() -> None:
    vol = np.arange(4 * 5 * 9, dtype=np.float32).reshape(4, 5, 9)
    low, truth = degrade(vol, 2)
    assert low.shape == (4, 5, 5) and truth.shape == (4, 5, 9)
    np.testing.assert_array_equal(low, vol[..., ::2])
    low8, truth8 = degrade(vol[..., :8], 2)  # even count: the last slice has no right neighbour
    assert low8.shape[2] == 4 and truth8.shape[2] == 7
    affine = np.diag([1.0, 1.0, 5.0, 1.0])
    affine[:3, 3] = [-10, 20, 30]
    up = upsampled_affine(affine, 2)
    for i in range(4):  # source slice i is output slice 2i in world space
        np.testing.assert_allclose(up @ [1, 2, 2 * i, 1], affine @ [1, 2, i, 1])
    with pytest.raises(SuperResError, match="at least 3"):
        degrade(vol[..., :2], 2)


@pytest.mark.parametrize("method", ["linear", "bspline"])
def test_interpolation_keeps_source_slices_and_is_exact_on_a_ramp(method: str) -> None:
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(6, 7, 5)).astype(np.float32)
    up = interpolate(vol, 2, method)
    assert up.shape == (6, 7, 9)
    np.testing.assert_allclose(up[..., ::2], vol, atol=1e-5)
    ramp = np.broadcast_to(np.arange(5, dtype=np.float32) * 3, (6, 7, 5))
    np.testing.assert_allclose(interpolate(ramp, 2, method)[..., 1::2], ramp[..., :-1] + 1.5, atol=1e-4)
    mask = np.zeros((6, 7, 5), np.uint8)
    mask[2:4, 2:4, 1:3] = 1
    up_mask = upsample_mask(mask, 2)
    assert up_mask.shape == (6, 7, 9) and set(np.unique(up_mask)) == {0, 1}
    np.testing.assert_array_equal(up_mask[..., ::2], mask)


def test_untrained_generator_is_linear_interpolation() -> None:
    rng = np.random.default_rng(1)
    low = rng.uniform(0, 200, size=(20, 24, 4)).astype(np.float32)
    gen = Generator(channels=8, blocks=1).eval()
    np.testing.assert_allclose(upsample(gen, low, 2), interpolate(low, 2, "linear"), rtol=1e-4, atol=1e-3)


def test_checkpoint_round_trip_and_subject_application(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vols = [rng.uniform(0, 100, size=(32, 32, 7)).astype(np.float32) for _ in range(2)]
    cfg = GanConfig(channels=4, blocks=1, epochs=2, steps_per_epoch=2, batch_size=2, patch_size=16)
    gen, history = train_generator(vols, cfg)
    assert len(history) == 2 and history[-1]["adv"] > 0  # the adversarial part ran
    path = tmp_path / "generator.pt"
    save_checkpoint(path, gen, cfg, ["z"], ["a", "b"], history)
    loaded, ckpt = load_checkpoint(path)
    assert ckpt["subjects"] == ["a", "b"] and ckpt["axes"] == ["z"]
    np.testing.assert_array_equal(upsample(gen, vols[0], 2), upsample(loaded, vols[0], 2))
    affine = np.diag([0.9, 0.9, 5.0, 1.0])
    image, mask = tmp_path / "img.nii.gz", tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(vols[1], affine), str(image))
    m = np.zeros(vols[1].shape, np.uint8)
    m[10:20, 10:20, 2:5] = 1
    nib.save(nib.Nifti1Image(m, affine), str(mask))
    out_image, out_mask = tmp_path / "sr.nii.gz", tmp_path / "sr_mask.nii.gz"
    apply_to_subject("s1", loaded, image, mask, ["z"], out_image, out_mask)
    sr, srm = nib.load(str(out_image)), nib.load(str(out_mask))
    assert sr.shape == (32, 32, 13) == srm.shape
    np.testing.assert_allclose(sr.header.get_zooms(), (0.9, 0.9, 2.5))
    np.testing.assert_allclose(sr.affine, srm.affine)
    np.testing.assert_allclose(np.asarray(sr.dataobj)[..., ::2], vols[1], rtol=1e-6)
    nib.save(nib.Nifti1Image(m[..., 1:], affine), str(mask))
    with pytest.raises(SuperResError, match="subject 's1'.*not on the grid"):
        apply_to_subject("s1", loaded, image, mask, ["z"], out_image, out_mask)
    with pytest.raises(SuperResError, match="not an oncoflow super-resolution checkpoint"):
        torch.save({"foo": 1}, tmp_path / "bad.pt")
        load_checkpoint(tmp_path / "bad.pt")


def test_interpolation_control_lands_on_the_generators_grid_with_the_same_mask(tmp_path: Path) -> None:
    """Variant interp: the same x2 grid and the same nearest-neighbour mask as the GAN's output, the
    image by cubic B-spline (exact on a cubic through-plane profile, unlike linear)."""
    z = np.arange(7, dtype=np.float32)
    vol = np.broadcast_to(0.5 * z**3 - 2 * z**2 + z + 10, (16, 16, 7)).astype(np.float32)
    affine = np.array([[0.9, 0, 0, -7], [0, 0.9, 0, 3], [0, 0, 5.0, 12], [0, 0, 0, 1]])
    image, mask = tmp_path / "img.nii.gz", tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(vol, affine), str(image))
    m = np.zeros(vol.shape, np.uint8)
    m[4:12, 4:12, 2:5] = 1
    nib.save(nib.Nifti1Image(m, affine), str(mask))
    gen = Generator(channels=4, blocks=1)
    apply_to_subject("s1", gen, image, mask, ["z"], tmp_path / "sr.nii.gz", tmp_path / "sr_mask.nii.gz")
    interpolate_subject("s1", image, mask, ["z"], tmp_path / "ip.nii.gz", tmp_path / "ip_mask.nii.gz")
    sr, ip = nib.load(str(tmp_path / "sr.nii.gz")), nib.load(str(tmp_path / "ip.nii.gz"))
    assert ip.shape == sr.shape == (16, 16, 13)
    np.testing.assert_allclose(ip.affine, sr.affine)
    np.testing.assert_array_equal(np.asarray(nib.load(str(tmp_path / "ip_mask.nii.gz")).dataobj),
                                  np.asarray(nib.load(str(tmp_path / "sr_mask.nii.gz")).dataobj))
    zz = np.arange(13) / 2.0
    truth = 0.5 * zz**3 - 2 * zz**2 + zz + 10
    np.testing.assert_allclose(np.asarray(ip.dataobj)[5, 5], truth, rtol=1e-5)
    assert np.abs(np.asarray(sr.dataobj)[5, 5] - truth).max() > 0.1  # linear (untrained GAN) is not exact


def test_split_subjects_is_seeded_and_disjoint() -> None:
    subjects = [f"s{i}" for i in range(20)]
    train, held = split_subjects(subjects, heldout_fraction=0.2, max_train=10, seed=42)
    assert len(held) == 4 and len(train) == 10 and not set(train) & set(held)
    assert (train, held) == split_subjects(list(reversed(subjects)), heldout_fraction=0.2, max_train=10, seed=42)


@pytest.mark.shared_data
def test_gan_beats_interpolation_on_held_out_lgg_slices(shared_data: Path) -> None:
    """Train on 12 real FLAIR volumes (5 mm slices, every other dropped), measure on 8 other
    patients' true dropped slices: the GAN's PSNR beats linear and cubic B-spline interpolation."""
    torch.set_num_threads(1)
    folders = sorted(p for p in (shared_data / "lgg_tcga").iterdir() if (p / "flair.nii.gz").is_file())
    train, held = split_subjects([p.name for p in folders], heldout_fraction=0.2, max_train=12, seed=42)
    held = held[:8]
    volumes = [np.asarray(nib.load(str(shared_data / "lgg_tcga" / s / "flair.nii.gz")).dataobj, dtype=np.float32)
               for s in train]
    gen, _ = train_generator(volumes, GanConfig(epochs=8, steps_per_epoch=15, seed=42))
    table = evaluate_heldout(gen, {s: shared_data / "lgg_tcga" / s / "flair.nii.gz" for s in held}, ["z"])
    means = table.groupby("method")[["psnr", "ssim"]].mean()
    print(means)
    assert means.loc["gan", "psnr"] > means.loc["linear", "psnr"]
    assert means.loc["gan", "psnr"] > means.loc["bspline", "psnr"]
    truth = np.asarray(nib.load(str(shared_data / "lgg_tcga" / held[0] / "flair.nii.gz")).dataobj, dtype=np.float32)
    low, cut = degrade(truth, 2)
    assert quality(cut, interpolate(low, 2, "linear"), 2)["psnr"] == pytest.approx(
        table.query("subject == @held[0] and method == 'linear'")["psnr"].iloc[0])
