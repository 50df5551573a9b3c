"""Deterministic synthetic "clinical" cohort: DICOM exams, tumor masks, sample sheet.

Layout written under ``out_dir``::

    samples.tsv                      sample sheet (what the pipeline reads)
    truth.tsv                        generator ground truth (debugging only)
    README.md                        description + parameters
    dicom/<subject>/[DICOM/]IMxxxxxx 4 MR series mixed in one folder, opaque names
    masks/<subject>_tumor.nii.gz     uint8 tumor mask on the t1ce grid (dcm2niix layout)

With a study shape (``studies.py``, ``oncoflow demo --study``) the sheet has that study's label
column, modalities and class balance; the liver study's subjects come from ``abdomen.py``.

Everything derives from ``seed`` via ``numpy.random.SeedSequence``; UIDs are hashed
from the generator parameters, dates/times are fixed, so reruns are byte-identical.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from pydicom.uid import generate_uid

from .abdomen import Lesion, draw_abdomen_geometry, draw_lesion, render_abdomen
from .acquisition import SeriesGeometry, draw_geometry, draw_motion, draw_subject_transform, render_series
from .dicom_writer import dcm2niix_orientation, write_dicom_series
from .phantom import load_phantom
from .studies import StudyShape, draw_labels
from .tumor import Tumor, draw_tumor

__all__ = [
    "PROTOCOLS",
    "SAMPLE_COLUMNS",
    "ABDOMEN_PROTOCOL",
    "SeriesProtocol",
    "SimulatedSeries",
    "SimulatedSubject",
    "make_demo_cohort",
    "simulate_subject",
]

SAMPLE_COLUMNS: tuple[str, ...] = ("subject", "label", "cohort", "dicom", "tumor_mask", "tumor_mask_space", "age", "sex",
                                   "site")
MASK_SPACE = "t1ce"


@dataclass(frozen=True)
class SeriesProtocol:
    """One series of the exam (in acquisition order)."""

    modality: str
    description: str
    series_number: int
    minutes_after_start: int
    dicom: dict[str, Any] = field(default_factory=dict)


PROTOCOLS: tuple[SeriesProtocol, ...] = (
    SeriesProtocol("t1", "AX T1 PRE", 3, 4, {
        "ScanningSequence": "SE", "SequenceVariant": "SK", "ScanOptions": "",
        "RepetitionTime": "550", "EchoTime": "10", "EchoTrainLength": "1", "FlipAngle": "90"}),
    SeriesProtocol("t2", "AX T2 FSE", 4, 8, {
        "ScanningSequence": "SE", "SequenceVariant": "SK", "ScanOptions": "FAST_GEMS",
        "RepetitionTime": "4000", "EchoTime": "100", "EchoTrainLength": "16", "FlipAngle": "90"}),
    SeriesProtocol("flair", "AX T2 FLAIR", 5, 12, {
        "ScanningSequence": ["SE", "IR"], "SequenceVariant": ["SK", "MP"], "ScanOptions": "IR",
        "RepetitionTime": "9000", "EchoTime": "120", "InversionTime": "2500",
        "EchoTrainLength": "20", "FlipAngle": "90"}),
    SeriesProtocol("t1ce", "AX T1 POST GAD", 8, 21, {
        "ScanningSequence": "SE", "SequenceVariant": "SK", "ScanOptions": "",
        "RepetitionTime": "550", "EchoTime": "10", "EchoTrainLength": "1", "FlipAngle": "90",
        "ContrastBolusAgent": "GADOBUTROL 7.5 ML", "ContrastBolusRoute": "IV"}),
)

# The liver study shape: one arterial-phase series (3D fat-suppressed gradient echo).
ABDOMEN_PROTOCOL = SeriesProtocol("arterial", "AX LAVA ARTERIAL", 6, 9, {
    "ScanningSequence": "GR", "SequenceVariant": ["SK", "SP"], "ScanOptions": "FAST_GEMS",
    "RepetitionTime": "3.9", "EchoTime": "1.8", "EchoTrainLength": "1", "FlipAngle": "12",
    "ContrastBolusAgent": "GADOTERATE 15 ML", "ContrastBolusRoute": "IV"})

# Two fake sites; the "external" cohort is scanned at the second one (mild domain shift).
_SITES: dict[str, dict[str, Any]] = {
    "train": {
        "dicom": {"InstitutionName": "Springfield General Hospital",
                  "InstitutionAddress": "742 Evergreen Terrace, Springfield",
                  "Manufacturer": "OncoflowSynth", "ManufacturerModelName": "PhantomScan 1.5",
                  "MagneticFieldStrength": "1.5", "ImagingFrequency": "63.87", "StationName": "MR1"},
        "noise": 0.03, "bias": 0.2, "code": "SGH",
    },
    "external": {
        "dicom": {"InstitutionName": "Shelbyville Regional Medical Center",
                  "InstitutionAddress": "19 Lemon Tree Lane, Shelbyville",
                  "Manufacturer": "OtherSynth", "ManufacturerModelName": "VirtuaMag 3T",
                  "MagneticFieldStrength": "3", "ImagingFrequency": "127.74", "StationName": "MRB"},
        "noise": 0.022, "bias": 0.3, "code": "SRMC",
    },
}
_EPOCH = dt.date(2019, 1, 7)


@dataclass
class SimulatedSeries:
    """One rendered series: uint16 pixels and the binary tumor mask on ``geometry``."""

    protocol: SeriesProtocol
    geometry: SeriesGeometry
    pixels: np.ndarray
    mask: np.ndarray


@dataclass
class SimulatedSubject:
    """Everything generated for one subject, before anything is written."""

    subject: str
    label: int
    cohort: str
    age: int
    sex: str
    tumor: Tumor | Lesion
    series: list[SimulatedSeries]
    patient: dict[str, str]
    study: dict[str, Any]
    start: dt.datetime
    file_names: list[str]
    nested: bool
    covariates: dict[str, float] = field(default_factory=dict)  # clinical columns of the sheet
    organ_mask: np.ndarray | None = None  # abdomen: the liver on the mask-space grid

    def by_modality(self, modality: str) -> SimulatedSeries:
        return next(s for s in self.series if s.protocol.modality == modality)


def _balanced_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    labels = np.arange(n) % 2
    if n % 2:
        labels[-1] = rng.integers(2)
    return rng.permutation(labels)


def _patient_and_study(
    rng_meta: np.random.Generator, idx: int, site: dict[str, Any], mrn: int, accession: int, mean_age: float,
) -> tuple[dict[str, str], dict[str, Any], dt.datetime, int, str]:
    """Fake DICOM patient and study modules; the age is drawn around ``mean_age`` (years)."""
    sex = "M" if rng_meta.random() < 0.55 else "F"
    target_age = float(np.clip(rng_meta.normal(mean_age, 13.0), 19, 88))
    study_date = _EPOCH + dt.timedelta(days=int(rng_meta.integers(0, 1400)))
    birth = study_date - dt.timedelta(days=int(target_age * 365.25))
    age = _age_years(birth, study_date)
    start = dt.datetime.combine(study_date, dt.time(7, 30)) + dt.timedelta(minutes=int(rng_meta.integers(0, 600)))
    patient = {
        "PatientName": f"DOE^{'JOHN' if sex == 'M' else 'JANE'}{idx + 1}",
        "PatientID": f"MRN{mrn:07d}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "PatientSex": sex,
        "PatientAge": f"{age:03d}Y",
        "PatientWeight": f"{rng_meta.uniform(50, 100):.0f}",
    }
    study = {
        "StudyDate": study_date.strftime("%Y%m%d"),
        "StudyTime": start.strftime("%H%M%S"),
        "AccessionNumber": f"A{accession:08d}",
        "ReferringPhysicianName": "HIBBERT^JULIUS",
        "StudyID": f"{accession % 100000}",
        **site["dicom"],
    }
    return patient, study, start, age, sex


def _file_names(rng_files: np.random.Generator, series: list[SimulatedSeries]) -> tuple[list[str], bool]:
    """Opaque file names, shuffled across series; some exports use a nested subfolder."""
    n_files = sum(s.pixels.shape[2] for s in series)
    names = [f"IM{v:06d}" for v in 1 + rng_files.choice(999_999, size=n_files, replace=False)]
    return names, bool(rng_files.random() < 0.3)


def _age_years(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def simulate_subject(
    idx: int,
    label: int,
    *,
    seed: int = 0,
    voxel_scale: float = 1.0,
    cohort: str = "train",
    ids: tuple[int, int] | None = None,
    modalities: tuple[str, ...] | None = None,
    body: str = "head",
) -> SimulatedSubject:
    """Render subject number ``idx`` (0-based) in memory; deterministic in its arguments.

    ``ids`` = (MRN number, accession number); derived from ``idx`` when omitted. ``modalities``:
    render only these series (default: all four); the others' random draws are skipped, not shifted.
    ``body: abdomen``: the liver study shape instead (``_simulate_abdomen``; ``modalities`` unused).
    """
    subject = f"demo{idx + 1:03d}"
    if body == "abdomen":
        return _simulate_abdomen(subject, idx, label, seed, voxel_scale, cohort, ids)
    phantom = load_phantom()
    rng_meta, rng_tumor, rng_pose, rng_files, *rng_series = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, idx]).spawn(4 + len(PROTOCOLS))
    )
    site = _SITES[cohort]
    mrn, accession = ids if ids is not None else (1_000_000 + idx, 10_000_000 + idx)

    # IDH-mutant-like (label 1) patients are younger on average.
    patient, study, start, age, sex = _patient_and_study(rng_meta, idx, site, mrn, accession,
                                                         45.0 if label == 1 else 58.0)
    tumor = draw_tumor(rng_tumor, phantom, label)
    head_to_world = draw_subject_transform(rng_pose, phantom)
    series = []
    for proto, rng in zip(PROTOCOLS, rng_series):
        if modalities is not None and proto.modality not in modalities:
            continue
        geom = draw_geometry(rng, voxel_scale)
        motion = draw_motion(rng)
        vol, mask = render_series(
            rng, phantom, tumor, proto.modality, geom, motion @ head_to_world,
            noise_sigma=site["noise"], bias_amp=site["bias"], with_mask=True,
        )
        gain = rng.uniform(700.0, 1100.0)  # arbitrary scanner units; WM ~ gain
        pixels = np.clip(np.rint(vol * gain), 0, 4095).astype(np.uint16)
        series.append(SimulatedSeries(proto, geom, pixels, mask))  # type: ignore[arg-type]

    names, nested = _file_names(rng_files, series)
    return SimulatedSubject(subject, int(label), cohort, age, sex, tumor, series, patient, study, start, names, nested)


def _simulate_abdomen(
    subject: str, idx: int, label: int, seed: int, voxel_scale: float, cohort: str, ids: tuple[int, int] | None,
) -> SimulatedSubject:
    """The liver study shape: one arterial-phase series with a liver lesion (``abdomen.py``) and the
    covariates ``tumor_diameter`` (mm) and ``arterial_enhancement`` (lesion / liver ratio)."""
    rng_meta, rng_lesion, rng_files, rng_series = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, idx, 5]).spawn(4)
    )
    site = _SITES[cohort]
    mrn, accession = ids if ids is not None else (1_000_000 + idx, 10_000_000 + idx)
    patient, study, start, age, sex = _patient_and_study(rng_meta, idx, site, mrn, accession, 62.0)
    lesion = draw_lesion(rng_lesion, label)
    geom = draw_abdomen_geometry(rng_series, voxel_scale)
    image, mask, liver = render_abdomen(rng_series, lesion, geom, noise_sigma=site["noise"], bias_amp=site["bias"])
    pixels = np.clip(np.rint(image * rng_series.uniform(900.0, 1300.0)), 0, 4095).astype(np.uint16)
    series = [SimulatedSeries(ABDOMEN_PROTOCOL, geom, pixels, mask)]
    names, nested = _file_names(rng_files, series)
    covariates = {"tumor_diameter": round(lesion.diameter_mm, 1),
                  "arterial_enhancement": round(lesion.enhancement, 2)}
    return SimulatedSubject(subject, int(label), cohort, age, sex, lesion, series, patient, study, start, names,
                            nested, covariates, liver)


def _write_subject(out_dir: Path, sim: SimulatedSubject, uid_key: list[str], mask_space: str = MASK_SPACE) -> None:
    """Write the subject's DICOM folder and its tumor mask (on the ``mask_space`` series grid)."""
    subj_dir = out_dir / "dicom" / sim.subject
    if subj_dir.exists():
        shutil.rmtree(subj_dir)  # never mix with files of an earlier run
    series_root = subj_dir / "DICOM" if sim.nested else subj_dir
    study_uid = generate_uid(entropy_srcs=[*uid_key, sim.subject, "study"])
    frame_uid = generate_uid(entropy_srcs=[*uid_key, sim.subject, "frame"])
    date = sim.study["StudyDate"]
    offset = 0
    for ser in sim.series:
        proto, nk = ser.protocol, ser.pixels.shape[2]
        when = (sim.start + dt.timedelta(minutes=proto.minutes_after_start)).strftime("%H%M%S")
        fixed = {"SeriesDate": date, "AcquisitionDate": date, "ContentDate": date,
                 "SeriesTime": when, "AcquisitionTime": when, "ContentTime": when}
        write_dicom_series(
            ser.pixels, ser.geometry.affine, series_root,
            series_description=proto.description,
            series_number=proto.series_number,
            patient=sim.patient,
            study_uid=study_uid,
            series_uid=generate_uid(entropy_srcs=[*uid_key, sim.subject, proto.modality]),
            file_names=sim.file_names[offset : offset + nk],
            frame_of_reference_uid=frame_uid,
            slice_thickness=ser.geometry.slice_thickness,
            extra={**sim.study, **fixed, **proto.dicom},
        )
        offset += nk

    ser = sim.by_modality(mask_space)
    data, affine = dcm2niix_orientation(ser.mask, ser.geometry.affine)
    img = nib.Nifti1Image(data.astype(np.uint8), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    nib.save(img, out_dir / "masks" / f"{sim.subject}_tumor.nii.gz")


def _write_tsv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _readme(n: int, seed: int, voxel_scale: float, external_fraction: float, n_ext: int) -> str:
    return f"""# oncoflow synthetic demo cohort

Generated by `oncoflow.demo.make_demo_cohort(n_subjects={n}, seed={seed}, voxel_scale={voxel_scale}, external_fraction={external_fraction})`.
Deterministic: the same arguments reproduce identical files. **All data are synthetic;
names, IDs and dates in the DICOM headers are fake** (useful to test de-identification).

* Anatomy: nilearn's MNI152 (2009a, 2 mm) GM/WM/brain templates plus a synthetic CSF rim,
  skull (bone/diploe) and scalp (skin/fat), scaled per subject.
* Four axial 2D series per exam, mixed in one folder with opaque names
  (`dicom/<subject>/`, sometimes a nested `DICOM/` subfolder): AX T1 PRE, AX T2 FSE,
  AX T2 FLAIR, AX T1 POST GAD. Each series has its own head motion (<= 8 deg, <= 8 mm),
  grid (~2 mm in-plane x {voxel_scale:g}, 3-5 mm slices x {voxel_scale:g}, slight oblique
  tilt), smooth bias field and Rician noise.
* One tumor per subject in the white matter (radius 8-15 mm) with edema. Label 0
  (IDH-wildtype-like): enhancing rim, necrotic core, wide edema. Label 1
  (IDH-mutant-like): no enhancement, T2-FLAIR mismatch, little edema. About 15% of
  subjects have an ambiguous phenotype drawn independently of the label.
* `masks/<subject>_tumor.nii.gz`: tumor mask on the t1ce series grid, in the layout
  dcm2niix produces for that series (same affine).
* `samples.tsv`: {", ".join(SAMPLE_COLUMNS)}. The last {n_ext} subject(s) form the
  `external` cohort (second fake site, 3 T, different noise/bias); `site` is the scanning
  site (SGH: the training site, SRMC: the external one).
* `truth.tsv`: generator ground truth (phenotype strengths, tumor centre in MNI mm);
  not used by the pipeline.
"""


# `make demo` / `oncoflow demo`: 20 subjects hold the demo within 15 minutes on 2 cores with HD-BET and
# its deepbet second opinion (~30 CPU-seconds a head more than deepbet alone; benchmarks/preprocess.md).
DEMO_SUBJECTS = 20


def make_demo_cohort(
    out_dir: Path,
    n_subjects: int = DEMO_SUBJECTS,
    seed: int = 0,
    *,
    voxel_scale: float = 1.0,
    external_fraction: float = 0.0,
    shape: StudyShape | None = None,
) -> Path:
    """Write a synthetic clinical cohort under ``out_dir``; return the sample sheet path.

    ``voxel_scale`` multiplies all voxel sizes (2 gives tiny, fast volumes);
    the last ``round(external_fraction * n_subjects)`` subjects form the external cohort.
    ``shape`` (``oncoflow.demo.studies``): a cohort shaped like a study config (its modalities,
    label column and class balance; the abdominal phantom for ``body: abdomen``); without it, the
    default demo (four modalities, balanced ``label``).
    """
    if n_subjects < 1:
        raise ValueError("n_subjects must be >= 1")
    if not 0.0 <= external_fraction <= 1.0:
        raise ValueError("external_fraction must be in [0, 1]")
    if voxel_scale <= 0:
        raise ValueError("voxel_scale must be > 0")
    out_dir = Path(out_dir)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    (out_dir / "dicom").mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(np.random.SeedSequence([seed, 1_000_003]))
    n_ext = int(round(external_fraction * n_subjects))
    if shape is None:
        labels = _balanced_labels(rng, n_subjects)
    else:
        labels = draw_labels(rng, n_subjects, n_ext, shape.positive_fraction)
    mrns = 1_000_000 + rng.choice(9_000_000, size=n_subjects, replace=False)
    accessions = 10_000_000 + rng.choice(90_000_000, size=n_subjects, replace=False)
    uid_key = ["oncoflow-demo", str(seed), str(n_subjects), repr(float(voxel_scale)), repr(float(external_fraction))]
    if shape is not None:
        uid_key.append(shape.name)
    mask_space = shape.mask_space if shape else MASK_SPACE
    covariates = ["tumor_diameter", "arterial_enhancement"] if shape and shape.body == "abdomen" else []

    f = "{:.4f}".format
    sheet_rows: list[list[Any]] = []
    truth_rows: list[list[Any]] = []
    for i in range(n_subjects):
        kwargs: dict[str, Any] = dict(seed=seed, voxel_scale=voxel_scale, ids=(int(mrns[i]), int(accessions[i])),
                                      cohort="external" if i >= n_subjects - n_ext else "train")
        if shape is not None:
            kwargs.update(modalities=shape.modalities, body=shape.body)
        sim = simulate_subject(i, int(labels[i]), **kwargs)
        _write_subject(out_dir, sim, uid_key, mask_space)
        sheet_rows.append([sim.subject, sim.label, sim.cohort, f"dicom/{sim.subject}",
                           f"masks/{sim.subject}_tumor.nii.gz", mask_space, sim.age, sim.sex,
                           _SITES[sim.cohort]["code"], *[sim.covariates[c] for c in covariates]])
        truth_rows.append(_truth_row(sim, mask_space, f))

    sheet = out_dir / "samples.tsv"
    columns = [shape.label if shape and c == "label" else c for c in SAMPLE_COLUMNS]
    _write_tsv(sheet, [*columns, *covariates], sheet_rows)
    modalities = [s.protocol.modality for s in sim.series]
    if shape is not None and shape.body == "abdomen":
        header = ["subject", "label", "cohort", "ambiguous", "aggressiveness", "enhancement", "necrosis",
                  "radius_mm", "centre_x_mm", "centre_y_mm", "centre_z_mm", "mask_voxels"]
    else:
        header = ["subject", "label", "cohort", "ambiguous", "aggressiveness", "enhancement", "necrosis",
                  "mismatch", "edema_scale", "radius_mm", "centre_x_mm", "centre_y_mm", "centre_z_mm", "mask_voxels"]
    _write_tsv(out_dir / "truth.tsv", [*header, *[f"{m}_shape" for m in modalities],
                                       *[f"{m}_voxel_mm" for m in modalities]], truth_rows)
    readme = _readme(n_subjects, seed, voxel_scale, external_fraction, n_ext)
    if covariates:  # the abdomen: none of the head description applies
        readme = readme.split("\n* Anatomy")[0]
    if shape is not None:
        readme += _shape_readme(shape, [*columns, *covariates], labels, n_ext)
    (out_dir / "README.md").write_text(readme, encoding="utf-8")
    return sheet


def _truth_row(sim: SimulatedSubject, mask_space: str, f: Any) -> list[Any]:
    """Generator ground truth of one subject (truth.tsv; not read by the pipeline)."""
    t = sim.tumor
    if isinstance(t, Lesion):
        phenotype = [f(t.enhancement), f(t.necrosis), f(t.radius)]
    else:
        phenotype = [f(t.enhancement), f(t.necrosis), f(t.mismatch), f(t.edema_scale), f(t.mean_radius)]
    return [
        sim.subject, sim.label, sim.cohort, int(t.ambiguous), f(t.aggressiveness), *phenotype,
        *[f(c) for c in t.centre], int(sim.by_modality(mask_space).mask.sum()),
        *["x".join(str(v) for v in ser.geometry.shape) for ser in sim.series],
        *["x".join(f"{v:.3f}" for v in ser.geometry.voxel_size) for ser in sim.series],
    ]


def _shape_readme(shape: StudyShape, columns: list[str], labels: np.ndarray, n_ext: int) -> str:
    n = len(labels)
    body = ("an abdominal phantom (body outline, fat, muscle, liver, spleen, kidneys, aorta, spine) "
            "with one liver lesion, a single arterial-phase series (AX LAVA ARTERIAL); label 1 "
            "(responder-like): smaller lesion, strong homogeneous arterial enhancement; label 0: "
            "larger, weaker enhancement, non-enhancing core. `tumor_diameter` (mm) and "
            "`arterial_enhancement` (lesion/liver signal ratio) come from the lesion"
            if shape.body == "abdomen" else
            f"the head phantom above, series {', '.join(shape.modalities)} only (the sheet's `label` "
            f"column is called `{shape.label}`)")
    return f"""
## Study shape `{shape.name}`

Shaped like `config/studies/{shape.name}.yaml`: {body}. The class is in column
`{shape.label}` ({int(labels.sum())} of {n} subjects are 1; target share {shape.positive_fraction:g},
in the internal and the external cohort alike); {n_ext} external subject(s). Sheet columns:
{", ".join(columns)}. Tumor masks are on the `{shape.mask_space}` grid.
"""
