"""The TCGA lower-grade glioma cohort of Buda et al. (Kaggle "lgg-mri-segmentation", 110 patients)
as an oncoflow sample sheet.

Layout read: ``<data>/data.csv`` (one row per patient, blank = missing) and ``<data>/<Patient>/``
with ``t1.nii.gz``, ``flair.nii.gz``, ``t1ce.nii.gz`` and ``tumor_mask.nii.gz`` (already
co-registered, tumor slices only). Written: one row per patient with ``nifti`` and ``tumor_mask``
relative to the sheet's folder, the label columns ``coc2`` (COCCluster 2 = 1, else 0; the
radiogenomics endpoint) and ``grade`` (TCGA neoplasm_histologic_grade as given), the clinical
covariates ``age`` and ``gender``, and ``site``: the tissue source site (institution) coded in the
TCGA ID (``TCGA_CS_4941`` -> ``CS``). Blank cells stay blank (never zero-filled).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

IMAGES = ("t1", "flair", "t1ce")
CLINICAL = {  # data.csv column -> sheet column
    "COCCluster": "coc_cluster",
    "neoplasm_histologic_grade": "grade",
    "histological_type": "histology",
    "age_at_initial_pathologic": "age",
    "gender": "gender",
}


def tcga_site(patient: str) -> str:
    """The tissue source site code of a TCGA patient ID (``TCGA_CS_4941`` or ``TCGA-CS-4941``)."""
    parts = patient.replace("-", "_").split("_")
    if len(parts) < 3 or parts[0] != "TCGA" or not parts[1]:
        raise ValueError(f"{patient!r} is not a TCGA patient ID (TCGA_<site>_<participant>)")
    return parts[1]


def _int_or_blank(value: object) -> str:
    return "" if pd.isna(value) else str(int(float(value)))


def write_lgg_tcga_sheet(data: Path, out: Path) -> Path:
    """Write the sample sheet; every patient folder must hold the three images and the mask
    (an error names the patient and the missing file)."""
    data, out = Path(data), Path(out)
    table = pd.read_csv(data / "data.csv", dtype=str, keep_default_na=False, na_values=[""])
    missing = [c for c in ("Patient", *CLINICAL) if c not in table.columns]
    if missing:
        raise ValueError(f"{data / 'data.csv'}: missing column(s) {', '.join(missing)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for _, row in table.iterrows():
        patient = row["Patient"]
        folder = data / patient
        for name in (*IMAGES, "tumor_mask"):
            if not (folder / f"{name}.nii.gz").is_file():
                raise FileNotFoundError(f"{patient}: {folder / f'{name}.nii.gz'} not found")
        coc = _int_or_blank(row["COCCluster"])
        rows.append({
            "subject": patient,
            "cohort": "train",
            "dicom": "",
            "nifti": os.path.relpath(folder, out.parent),
            "tumor_mask": os.path.relpath(folder / "tumor_mask.nii.gz", out.parent),
            "tumor_mask_space": "flair",
            "coc2": "" if coc == "" else str(int(coc == "2")),
            **{sheet: _int_or_blank(row[src]) for src, sheet in CLINICAL.items()},
            "site": tcga_site(patient),
        })
    pd.DataFrame(rows).to_csv(out, sep="\t", index=False)
    return out
