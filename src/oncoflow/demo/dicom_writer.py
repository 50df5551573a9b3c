"""Write a 3D volume as a multi-slice MR DICOM series (one file per slice).

Conventions
-----------
``volume`` is indexed ``(i, j, k)`` like a NIfTI array and ``affine`` is a NIfTI-style
4x4 voxel -> world (RAS+, mm) matrix. Each ``k`` becomes one slice; inside a slice the
row direction (along a row, i.e. increasing column) follows ``i`` and the column
direction follows ``j``, so ``pixel_array[r, c] == volume[c, r, k]``. World coordinates
are converted to DICOM LPS by negating x and y.

For a conventional axial series pass an affine whose ``i`` axis points to patient Left,
``j`` to Posterior and ``k`` to Superior (``ImageOrientationPatient = [1,0,0,0,1,0]``).
dcm2niix stores such a series with the row axis flipped; :func:`dcm2niix_orientation`
gives the array/affine it produces, so companion label maps can be written on exactly
the converted grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

__all__ = ["write_dicom_series", "dcm2niix_orientation", "ras_to_lps", "format_ds"]

_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

# Defaults applied before ``patient``/``extra`` (which override them).
_DEFAULTS: dict[str, Any] = {
    "SpecificCharacterSet": "ISO_IR 100",
    "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"],
    "StudyDate": "20210104",
    "SeriesDate": "20210104",
    "AcquisitionDate": "20210104",
    "ContentDate": "20210104",
    "StudyTime": "083000.000000",
    "SeriesTime": "083000.000000",
    "AcquisitionTime": "083000.000000",
    "ContentTime": "083000.000000",
    "AccessionNumber": "",
    "Modality": "MR",
    "Manufacturer": "OncoflowSynth",
    "ManufacturerModelName": "PhantomScan 1.5",
    "ReferringPhysicianName": "",
    "StudyDescription": "MRI BRAIN W WO CONTRAST",
    "BodyPartExamined": "BRAIN",
    "PatientName": "ANONYMOUS",
    "PatientID": "UNKNOWN",
    "PatientBirthDate": "",
    "PatientSex": "",
    "PatientPosition": "HFS",
    "MRAcquisitionType": "2D",
    "MagneticFieldStrength": "1.5",
    "StudyID": "1",
    "AcquisitionNumber": "1",
    "PositionReferenceIndicator": "",
    "SamplesPerPixel": 1,
    "PhotometricInterpretation": "MONOCHROME2",
}


def format_ds(value: float) -> str:
    """Format a float as a DICOM DS string (max 16 chars), deterministically."""
    v = float(value)
    if abs(v) < 1e-9:
        return "0"
    for prec in range(12, 0, -1):
        s = f"{v:.{prec}g}"
        if len(s) <= 16:
            return s
    raise ValueError(f"cannot format {value} as DS")


def ras_to_lps(affine: np.ndarray) -> np.ndarray:
    """NIfTI (RAS+) voxel->world affine to the same affine in DICOM LPS world."""
    return _LPS @ np.asarray(affine, dtype=float)


def dcm2niix_orientation(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Array and affine as dcm2niix writes a series produced by :func:`write_dicom_series`.

    dcm2niix keeps the column (``i``) axis, flips the row (``j``) axis and orders slices
    along the slice normal ``cross(row, col)``; a slice axis pointing the other way is
    reversed too.
    """
    vol = np.asarray(volume)
    a = np.asarray(affine, dtype=float).copy()
    lps = ras_to_lps(a)
    reverse_slices = float(np.dot(np.cross(lps[:3, 0], lps[:3, 1]), lps[:3, 2])) < 0
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1.0, vol.shape[1] - 1
    vol, a = vol[:, ::-1, :], a @ flip
    if vol.shape[2] > 1 and reverse_slices:
        flip = np.eye(4)
        flip[2, 2], flip[2, 3] = -1.0, vol.shape[2] - 1
        vol, a = vol[:, :, ::-1], a @ flip
    return np.ascontiguousarray(vol), a


def _encode(ds: Dataset) -> dict[int, bytes]:
    """Encode each element of ``ds`` (explicit VR little endian), keyed by tag."""
    out: dict[int, bytes] = {}
    for elem in ds:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_data_element(fp, elem)
        out[int(elem.tag)] = fp.getvalue()
    return out


def _file_bytes(shared: dict[int, bytes], own: Dataset, sop_uid: str) -> bytes:
    """Part-10 file: preamble, file meta, then shared + per-slice elements in tag order."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_file_meta_info(fp, meta, enforce_standard=True)
    elements = {**shared, **_encode(own)}
    body = b"".join(elements[tag] for tag in sorted(elements))
    return b"\x00" * 128 + b"DICM" + fp.getvalue() + body


def _to_pixels(volume: np.ndarray) -> tuple[np.ndarray, float, float, bool]:
    """Return (stored integer array, slope, intercept, signed)."""
    vol = np.asarray(volume)
    if np.issubdtype(vol.dtype, np.integer):
        lo, hi = int(vol.min()), int(vol.max())
        if lo >= 0 and hi <= 65535:
            return vol.astype(np.uint16), 1.0, 0.0, False
        if lo >= -32768 and hi <= 32767:
            return vol.astype(np.int16), 1.0, 0.0, True
    # Float (or out-of-range int): map [min, max] linearly onto uint16 [0, 65535].
    vol = vol.astype(np.float64)
    lo, hi = float(vol.min()), float(vol.max())
    slope = (hi - lo) / 65535.0 if hi > lo else 1.0
    stored = np.rint((vol - lo) / slope).clip(0, 65535).astype(np.uint16)
    return stored, slope, lo, False


def write_dicom_series(
    volume: np.ndarray,
    affine: np.ndarray,
    out_dir: Path,
    *,
    series_description: str,
    series_number: int,
    patient: Mapping[str, str],
    study_uid: str,
    series_uid: str,
    file_prefix: str = "IM",
    file_names: Sequence[str] | None = None,
    protocol_name: str | None = None,
    frame_of_reference_uid: str | None = None,
    slice_thickness: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``volume`` as an MR Image Storage series, one explicit-VR-LE file per slice.

    ``patient`` and ``extra`` are DICOM keyword -> value mappings applied on top of
    sensible defaults (e.g. ``{"PatientName": "DOE^JANE1", "PatientID": "MRN0000001"}``;
    ``extra`` may set StudyDate/SeriesTime/RepetitionTime/...). Integer volumes that fit
    uint16 (or int16) are stored as is; anything else is scaled to uint16 with
    RescaleSlope/RescaleIntercept. SOPInstanceUIDs derive from ``series_uid`` so output
    is deterministic. Files are named ``file_names[k]`` for slice ``k`` if given, else
    ``f"{file_prefix}{k + 1:06d}"``. Returns the written paths in slice order.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"volume must be 3D, got shape {vol.shape}")
    a = np.asarray(affine, dtype=float)
    if a.shape != (4, 4):
        raise ValueError("affine must be 4x4")
    ni, nj, nk = vol.shape
    if file_names is not None and len(file_names) != nk:
        raise ValueError(f"need {nk} file names, got {len(file_names)}")

    lps = ras_to_lps(a)
    cols = [lps[:3, d] for d in range(3)]
    spacing = [float(np.linalg.norm(c)) for c in cols]
    unit = [c / s for c, s in zip(cols, spacing)]
    for x, y in ((0, 1), (0, 2), (1, 2)):
        if abs(float(np.dot(unit[x], unit[y]))) > 1e-4:
            raise ValueError("affine axes must be orthogonal (no shear) for a DICOM series")
    row_cos, col_cos = unit[0], unit[1]
    normal = np.cross(row_cos, col_cos)

    stored, slope, intercept, signed = _to_pixels(vol)
    bits = 16 if signed or int(stored.max(initial=0)) > 4095 else 12
    thickness = spacing[2] if slice_thickness is None else float(slice_thickness)
    frame_uid = frame_of_reference_uid or generate_uid(entropy_srcs=[study_uid, "frame"])

    base = Dataset()
    for key, value in {**_DEFAULTS, **dict(patient), **dict(extra or {})}.items():
        setattr(base, key, value)
    base.SOPClassUID = MRImageStorage
    base.StudyInstanceUID = study_uid
    base.SeriesInstanceUID = series_uid
    base.FrameOfReferenceUID = frame_uid
    base.SeriesNumber = str(int(series_number))
    base.SeriesDescription = series_description
    base.ProtocolName = protocol_name or series_description
    base.ImageOrientationPatient = [format_ds(v) for v in (*row_cos, *col_cos)]
    base.PixelSpacing = [format_ds(spacing[1]), format_ds(spacing[0])]  # row, column spacing
    base.SliceThickness = format_ds(thickness)
    base.SpacingBetweenSlices = format_ds(spacing[2])
    base.Rows, base.Columns = nj, ni
    base.BitsAllocated, base.BitsStored, base.HighBit = 16, bits, bits - 1
    base.PixelRepresentation = 1 if signed else 0
    if slope != 1.0 or intercept != 0.0:
        base.RescaleSlope, base.RescaleIntercept = format_ds(slope), format_ds(intercept)
        base.RescaleType = "US"
    lo, hi = float(vol.min()), float(vol.max())
    base.WindowCenter, base.WindowWidth = format_ds((lo + hi) / 2), format_ds(max(hi - lo, 1.0))

    # Elements shared by all slices are encoded once (pydicom's writer is the bottleneck).
    shared = _encode(base)
    out_dir = Path(out_dir)
    paths: list[Path] = []
    for k in range(nk):
        own = Dataset()
        sop_uid = generate_uid(entropy_srcs=[series_uid, str(k)])
        own.SOPInstanceUID = sop_uid
        own.InstanceNumber = str(k + 1)
        pos = (lps @ np.array([0.0, 0.0, k, 1.0]))[:3]
        own.ImagePositionPatient = [format_ds(v) for v in pos]
        own.SliceLocation = format_ds(float(np.dot(pos, normal)))
        own.add(DataElement(0x7FE00010, "OW", np.ascontiguousarray(stored[:, :, k].T).tobytes()))
        path = out_dir / (file_names[k] if file_names is not None else f"{file_prefix}{k + 1:06d}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_file_bytes(shared, own, sop_uid))
        paths.append(path)
    return paths
