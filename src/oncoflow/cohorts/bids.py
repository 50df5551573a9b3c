"""A BIDS dataset as an oncoflow sample sheet (`oncoflow cohort-sheet bids`), read with pybids.

Each study modality is found by BIDS entities (a mapping, :data:`DEFAULT_MAPPING` unless given):
``t1`` = suffix T1w without a contrast agent, ``t1ce`` = T1w with ``ce-gadolinium``, ``t2`` = T2w,
``flair`` = FLAIR; an entity set to null must be absent (so T1w and ce-T1w never both match ``t1``).
The sheet's ``nifti`` column names a folder of ``<modality>.nii(.gz)`` (+ ``<modality>.json``, the
BIDS sidecar): the writer links each subject's matching files there, beside the sheet
(``<sheet stem>_nifti/<subject>/``), so the BIDS dataset itself is read, never changed.

One row per subject, or per subject and session: a dataset with several sessions of a subject needs
``session`` (which one) or ``each_session`` (every one, as ``<sub>_<ses>`` rows with the subject in a
``bids_subject`` column: for applying trained models, not for cross-validation, since the folds
would split one patient's sessions). Labels are optional: ``label`` names a participants.tsv column
(its values copied as they are, under ``label_as``, e.g. the study's label column); the other
participants.tsv columns (age, sex...) are kept. A tumor
mask may come from the derivatives (``mask_desc``: files ``*_desc-<label>_mask.nii.gz``).

Errors name the subject (and session), the modality, and the files found or looked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from oncoflow import atomic

#: study modality -> BIDS entities (value None: the entity must be absent; "*": present, any value)
DEFAULT_MAPPING: dict[str, dict[str, Any]] = {
    "t1": {"suffix": "T1w", "ce": None},
    "t1ce": {"suffix": "T1w", "ce": "gadolinium"},
    "t2": {"suffix": "T2w"},
    "flair": {"suffix": "FLAIR"},
}
EXTENSIONS = [".nii.gz", ".nii"]


class BidsSheetError(ValueError):
    """A BIDS dataset that cannot become a sample sheet (names the subject and what to do)."""


def parse_mapping(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["t1ce=suffix:T1w,ce:gd", "t1=suffix:T1w,ce:"]`` -> a mapping (an empty value: entity absent)."""
    mapping: dict[str, dict[str, Any]] = {}
    for item in items:
        modality, sep, spec = item.partition("=")
        if not sep or not modality or not spec:
            raise BidsSheetError(f"--map {item!r}: expected MODALITY=entity:value[,entity:value...], "
                                 "e.g. t1ce=suffix:T1w,ce:gadolinium")
        entities: dict[str, Any] = {}
        for pair in spec.split(","):
            key, colon, value = pair.partition(":")
            if not colon or not key:
                raise BidsSheetError(f"--map {item!r}: {pair!r} is not entity:value")
            entities[key.strip()] = value.strip() or None
        mapping[modality.strip()] = entities
    return mapping


def entity_names() -> dict[str, str]:
    """BIDS file-name keys (``ce``, ``acq``, ``rec``...) -> pybids' entity names (``ceagent``...)."""
    from bids.layout.models import Config

    names = {}
    for name, entity in Config.load("bids").entities.items():
        key = re.search(r"([a-zA-Z]+)-\(", entity.pattern)
        if key:
            names[key.group(1)] = name
    return names


def _query(entities: Mapping[str, Any]) -> dict[str, Any]:
    """pybids filters: keys as in file names or as pybids names them; None: the entity is absent;
    ``*``: present, any value (e.g. ``ce: "*"`` for any contrast agent label)."""
    from bids.layout import Query

    names = entity_names()
    return {names.get(k, k): Query.NONE if v is None else Query.ANY if v == "*" else v for k, v in entities.items()}


def _describe(entities: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={'(absent)' if v is None else '(any)' if v == '*' else v}" for k, v in entities.items())


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.relpath(target, link.parent), link)


def bids_sheet(data: Path, out: Path, modalities: list[str], *, mapping: Mapping[str, Mapping[str, Any]] | None = None,
               label: str | None = None, label_as: str | None = None, cohort: str = "train", session: str | None = None,
               each_session: bool = False, mask_desc: str | None = None, mask_space: str | None = None,
               validate: bool = True) -> pd.DataFrame:
    """The sample sheet of BIDS dataset ``data`` (written by :func:`write_bids_sheet`); links the
    images under ``<out stem>_nifti/``."""
    from bids import BIDSLayout

    data, out = Path(data).resolve(), Path(out)
    mapping = dict(mapping or DEFAULT_MAPPING)
    unmapped = [m for m in modalities if m not in mapping]
    if unmapped:
        raise BidsSheetError(f"modalities {', '.join(unmapped)} have no BIDS mapping (give --map "
                             f"{unmapped[0]}=suffix:...; mapped: {', '.join(mapping)})")
    if mask_desc and not mask_space:
        raise BidsSheetError("--mask-desc needs --mask-space (the modality whose grid the masks are on)")
    if not (data / "dataset_description.json").is_file():
        raise BidsSheetError(f"{data}: no dataset_description.json; not a BIDS dataset")
    layout = BIDSLayout(str(data), validate=validate, derivatives=bool(mask_desc))
    subjects = layout.get_subjects()
    if not subjects:
        raise BidsSheetError(f"{data}: no sub-* folders")
    participants = _participants(data, label)
    links = out.parent / f"{out.stem}_nifti"
    rows = []
    for sub in sorted(subjects):
        sessions = layout.get_sessions(subject=sub) or [None]
        if session is not None:
            if session not in sessions:
                raise BidsSheetError(f"subject sub-{sub}: no session ses-{session} (has "
                                     f"{', '.join(f'ses-{s}' for s in sessions if s) or 'no sessions'})")
            sessions = [session]
        elif len(sessions) > 1 and not each_session:
            raise BidsSheetError(f"subject sub-{sub}: {len(sessions)} sessions ({', '.join(f'ses-{s}' for s in sessions)});"
                                 " choose one with --session, or --each-session for one row per session (never for"
                                 " cross-validation: the folds would split this patient's sessions)")
        for ses in sessions:
            subject = sub if ses is None or not each_session else f"{sub}_{ses}"
            where = f"subject sub-{sub}" + (f" session ses-{ses}" if ses else "")
            folder = links / subject
            for modality in modalities:
                image = _one_file(layout, where, modality, mapping[modality], sub, ses, scope="raw")
                ext = ".nii.gz" if image.name.endswith(".nii.gz") else ".nii"
                _link(image, folder / f"{modality}{ext}")
                sidecar = image.with_name(image.name[: -len(ext)] + ".json")
                if sidecar.is_file():
                    _link(sidecar, folder / f"{modality}.json")
            row = {"subject": subject, "cohort": cohort, "nifti": os.path.relpath(folder, out.parent),
                   "tumor_mask": "", "tumor_mask_space": ""}
            if mask_desc:
                mask = _one_file(layout, where, "tumor mask", {"desc": mask_desc, "suffix": "mask"}, sub, ses,
                                 scope="derivatives")
                row.update(tumor_mask=os.path.relpath(mask, out.parent), tumor_mask_space=mask_space)
            if each_session:
                row["bids_subject"] = sub
            if ses:
                row["bids_session"] = ses
            extra = participants.get(sub)
            if extra is None and label:
                raise BidsSheetError(f"subject sub-{sub}: not in {data / 'participants.tsv'} (--label {label})")
            row.update(extra or {})
            if label and label_as and label_as != label:
                row[label_as] = row.pop(label)
            rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _one_file(layout: Any, where: str, modality: str, entities: Mapping[str, Any], sub: str, ses: str | None,
              *, scope: str) -> Path:
    query = {**_query(entities), "subject": sub, "extension": EXTENSIONS, "scope": scope}
    if ses:
        query["session"] = ses
    found = sorted(layout.get(return_type="filename", **query))
    if len(found) == 1:
        return Path(found[0])
    if not found:
        raise BidsSheetError(f"{where}: no {modality} image ({_describe(entities)}) in {scope}; add it, or map "
                             f"{modality} to the entities its file has (--map {modality}=suffix:...)")
    names = ", ".join(Path(f).name for f in found)
    raise BidsSheetError(f"{where}: {len(found)} images match {modality} ({_describe(entities)}): {names}; "
                         "make the mapping pick one (e.g. add acq:<label> or run:<index> in --map)")


def _participants(data: Path, label: str | None) -> dict[str, dict[str, str]]:
    """participants.tsv rows by subject label (without ``sub-``), every column but participant_id
    (BIDS ``n/a`` as a blank cell)."""
    path = data / "participants.tsv"
    if not path.is_file():
        if label:
            raise BidsSheetError(f"--label {label}: {path} not found")
        return {}
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if "participant_id" not in table.columns:
        raise BidsSheetError(f"{path}: no participant_id column")
    if label and label not in table.columns:
        raise BidsSheetError(f"--label {label}: no such column in {path} (columns: "
                             f"{', '.join(c for c in table.columns if c != 'participant_id')})")
    reserved = {"subject", "cohort", "dicom", "nifti", "tumor_mask", "tumor_mask_space", "bids_subject",
                "bids_session"}
    clash = sorted(reserved & set(table.columns))
    if clash:
        raise BidsSheetError(f"{path}: column(s) {', '.join(clash)} clash with sample-sheet columns; rename them")
    table = table.replace("n/a", "")  # BIDS writes a missing value as n/a; a sheet leaves it blank
    table["participant_id"] = table["participant_id"].str.removeprefix("sub-")
    return {r.pop("participant_id"): r for r in table.to_dict("records")}


def write_bids_sheet(data: Path, out: Path, modalities: list[str], **options: Any) -> Path:
    """Write the sheet (TSV) of :func:`bids_sheet`; returns ``out``."""
    sheet = bids_sheet(data, out, modalities, **options)
    atomic.write_table(sheet, out, sep="\t", index=False)
    return Path(out)
