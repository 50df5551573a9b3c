"""The sample sheet: loading and checking the study's (and a predict run's, and pretraining
cohorts') sheets, site names, and project-relative paths.

Every error names the sheet file, the column and the subject (or the config field that names the
column). The config's own cross-references are checked in oncoflow.config.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oncoflow.config import ConfigError, radiomics_active, site_column

# A subject ID names files such as qc/<subject>.png and log paths <model>_<subject>...; file systems
# allow 255 bytes per name.
MAX_SUBJECT_LENGTH = 64
SHEET_COLUMNS = ("subject", "cohort", "tumor_mask", "tumor_mask_space")
# Where a subject's images come from: exactly one of these per subject (a sheet may have both
# columns, one of them empty in each row).
SOURCE_COLUMNS = ("dicom", "nifti")


def check_radiomics_samples(config: dict[str, Any], samples: pd.DataFrame, masks_required: bool = True) -> None:
    """The clinical covariates are sheet columns; every subject needs a tumor mask (features are
    computed inside it), except in a predict run (``masks_required`` false: listed, not scored)."""
    if not radiomics_active(config):
        return
    for column in config["radiomics"].get("clinical", []):
        if column not in samples.columns:
            raise ConfigError(f"config: radiomics.clinical: sample sheet has no column {column!r} "
                              f"(columns are {', '.join(c for c in samples.columns if c not in ('y', 'source'))})")
        if column == config["study"]["label"]:
            raise ConfigError(f"config: radiomics.clinical: {column!r} is the label column (study.label)")
    for subject in subjects_without_tumor_mask(samples) if masks_required else []:
        tumor_mask_needed(samples, subject)


def load_samples(config: dict[str, Any], base: Path = Path(".")) -> pd.DataFrame:
    """Read and check the sample sheet; adds ``y`` (1 = positive class), project-relative paths and
    ``source`` (``dicom`` or ``nifti``: which of the two columns holds the subject's images).

    Both source columns are always present afterwards (empty where not used); an empty
    ``tumor_mask`` is allowed (front-half targets only: see ``subjects_without_tumor_mask``)."""
    path = base / config["cohort"]["samples"]
    if not path.exists():
        raise ConfigError(f"config: cohort.samples: sample sheet {path} not found (for the demo, "
                          "run `oncoflow demo` first, or use `make demo`)")
    label = config["study"]["label"]
    sheet = _read_sheet(path, list(config["ingest"]["modalities"]), extra=(label,), field="study.label",
                        allow_identifiers=allow_identifiers(config))
    check_labels(sheet, label, path)
    check_cohorts(sheet, config, path)
    check_sites(sheet, config, path)
    positive = str(config["study"]["positive"])
    values = sorted(sheet[label].unique())
    if positive not in values or len(values) != 2:
        raise ConfigError(f"{path}: column {label!r}: expected two classes including study.positive "
                          f"= {positive!r}, found {values}")
    sheet["y"] = (sheet[label] == positive).astype(int)
    return sheet


def site_names(values: pd.Series) -> pd.Series:
    """Site names as the whole workflow reads them: text without surrounding spaces."""
    return values.astype(str).str.strip()


def check_sites(sheet: pd.DataFrame, config: dict[str, Any], path: Path) -> None:
    """With cohort.site, the column exists and every subject has a site (a blank would put
    patients of unknown origin into one pseudo-site); site names are stripped of spaces."""
    column = site_column(config)
    if column is None:
        return
    if column not in sheet.columns:
        raise ConfigError(f"config: cohort.site: sample sheet {path} has no column {column!r} "
                          f"(columns are {', '.join(c for c in sheet.columns if c != 'source')})")
    if column in (config["study"]["label"], "subject", "cohort"):
        raise ConfigError(f"config: cohort.site: {column!r} is the {column} column, not a site")
    raw = sheet[column].astype(str)
    sheet[column] = site_names(sheet[column])
    for name, spellings in raw.groupby(sheet[column]).unique().items():
        if len(spellings) > 1:
            print(f"warning: {path}: column {column!r} (cohort.site): {' and '.join(map(repr, sorted(spellings)))} "
                  f"are read as one site {name!r} (surrounding spaces are dropped)", file=sys.stderr)
    blank = (sheet[column] == "") | sheet[column].str.lower().isin(MISSING_LABELS)
    if blank.any():
        raise ConfigError(f"{path}: column {column!r} (cohort.site): no site at {_rows(sheet, blank)}; give "
                          "every subject its site (centre or scanner), or unset cohort.site")


def load_predict_samples(config: dict[str, Any], base: Path = Path("."),
                         refused: list[tuple[int, str]] | None = None) -> pd.DataFrame:
    """The new sample sheet of ``oncoflow predict`` (config ``predict.samples``): checked like the
    study's, but the label column is optional (``y`` is then missing) and cohort values are free
    (each gets its own metrics rows); a labelled sheet still needs exact class values. With
    ``predict.keep_going``, rows with a problem of their own are left out (listed in ``refused``)."""
    if refused is None and config["predict"].get("keep_going"):
        refused = []
    path = base / config["predict"]["samples"]
    if not path.exists():
        raise ConfigError(f"predict: sample sheet {path} not found")
    sheet = _read_sheet(path, list(config["ingest"]["modalities"]), allow_identifiers=allow_identifiers(config),
                        refused=refused, optional=("tumor_mask", "tumor_mask_space"))  # masks: segmenters or none
    label = config["study"]["label"]
    if label in sheet.columns:
        check_labels(sheet, label, path)
        sheet["y"] = (sheet[label] == str(config["study"]["positive"])).astype(int)
    else:
        sheet["y"] = np.nan
    return sheet


# Spellings of "no value" that pandas or a spreadsheet writes; a label must be a class, not a gap.
MISSING_LABELS = frozenset({"nan", "na", "n/a", "null", "none", "missing", "?", "-", "#n/a"})


def _rows(sheet: pd.DataFrame, bad: pd.Series) -> str:
    """'line 3 (subject 'A'), line 7 (subject 'B')': file lines, the header being line 1."""
    lines = [f"line {k + 2} (subject {s!r})" for k, (s, b) in enumerate(zip(sheet["subject"], bad)) if b]
    return ", ".join(lines[:10]) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")


def check_labels(sheet: pd.DataFrame, label: str, path: Path) -> None:
    """Labels parse strictly: a blank, a missing-value token or surrounding whitespace is an error
    naming every such row (they would otherwise become the negative class or a third one)."""
    values = sheet[label].astype(str)
    problems = [
        (values.str.strip() == "", "blank"),
        (values.str.strip().str.lower().isin(MISSING_LABELS), "a missing-value token (NaN, NA, ...)"),
        ((values != values.str.strip()) & (values.str.strip() != ""), "spaces around the value"),
    ]
    for bad, what in problems:
        if bad.any():
            raise ConfigError(f"{path}: column {label!r}: {what} at {_rows(sheet, bad)}; give every "
                              "subject one of the two classes exactly, or remove the row")


def check_cohorts(sheet: pd.DataFrame, config: dict[str, Any], path: Path) -> None:
    """Every cohort value is internal (cohort.internal) or external (cohort.external): a typo such as
    'extrenal' would otherwise put an external subject into training."""
    internal = list(config["cohort"].get("internal", ["train"]))
    external = list(config["cohort"].get("external", []))
    bad = ~sheet["cohort"].isin([*internal, *external])
    if bad.any():
        values = sorted(set(sheet.loc[bad, "cohort"]))
        raise ConfigError(f"{path}: column 'cohort': {', '.join(map(repr, values))} at {_rows(sheet, bad)} "
                          f"is neither internal (cohort.internal: {internal}) nor external (cohort.external: "
                          f"{external}); fix the value or list it in the config")


def load_pretrain_samples(config: dict[str, Any], study: pd.DataFrame, base: Path = Path(".")) -> pd.DataFrame:
    """The subjects of every ``pretrain`` job with ``source: cohort`` (their own sample sheets, no
    label), checked like the study's sheet, plus a ``pretrain`` column naming the job. They go
    through the same front half (ingest, N4, registration, brain extraction, crop) but never into
    folds or evaluation; an ID shared with the study's sheet (or between two such sheets) is an
    error, since outputs are named by subject."""
    frames = []
    owner: dict[str, str] = {s: "the study's sample sheet" for s in study["subject"]}
    modalities = list(config["ingest"]["modalities"])
    for k, entry in enumerate(config.get("pretrain") or []):
        if entry.get("source", "folds") != "cohort":
            continue
        path = base / entry["samples"]
        if not path.exists():
            raise ConfigError(f"config: pretrain[{k}].samples: sample sheet {path} not found")
        sheet = _read_sheet(path, modalities, allow_identifiers=allow_identifiers(config))
        if entry.get("task", "segmentation") != "rotation":
            no_mask = subjects_without_tumor_mask(sheet)
            if no_mask:
                raise ConfigError(f"{path}: column 'tumor_mask': subject {no_mask[0]!r} has no tumor "
                                  f"mask, which pretrain[{k}] task {entry.get('task', 'segmentation')!r} "
                                  "needs (task rotation needs none)")
        for subject in sheet["subject"]:
            if subject in owner:
                raise ConfigError(f"{path}: column 'subject': {subject!r} is also in {owner[subject]} "
                                  f"(pretrain[{k}]); outputs are named by subject, so IDs must be unique")
            owner[subject] = f"pretrain[{k}]'s sheet {path}"
        sheet["pretrain"] = entry["name"]
        frames.append(sheet)
    columns = [*study.columns.drop("y", errors="ignore"), "pretrain"]
    if not frames:
        return pd.DataFrame(columns=columns).set_index("subject", drop=False)
    return pd.concat(frames)


def _read_sheet(path: Path, modalities: list[str], extra: tuple[str, ...] = (),
                field: str = "sample sheet", *, allow_identifiers: bool = False,
                refused: list[tuple[int, str]] | None = None, optional: tuple[str, ...] = ()) -> pd.DataFrame:
    """A sample sheet's common checks: columns, unique subjects (also without case), IDs that are
    not identifiers (``oncoflow.subject_ids``; unless ``allow_identifiers``), one image source per
    subject, the tumor mask's space, and that every path exists (given relative to the sheet; made
    relative to the project, see ``stable_path``). ``refused`` (a list: predict's --keep-going):
    a row with a problem of its own is left out and listed there as (sheet line, reason) instead of
    stopping the run; problems of the whole sheet (columns, duplicates) still stop it. A column of
    ``optional`` that the sheet lacks is read as blank (predict: no tumor_mask column)."""
    from oncoflow.subject_ids import case_collisions, identifier_problem

    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for column in optional:
        if column not in sheet.columns:
            sheet[column] = ""
    for column in (*SHEET_COLUMNS, *extra):
        if column not in sheet.columns:
            where = field if column in extra else "sample sheet"
            raise ConfigError(f"{path}: missing column {column!r} ({where}); columns are "
                              f"{', '.join(sheet.columns)}")
    if not any(c in sheet.columns for c in SOURCE_COLUMNS):
        raise ConfigError(f"{path}: missing column 'dicom' or 'nifti' (where each subject's images "
                          f"are); columns are {', '.join(sheet.columns)}")
    for column in SOURCE_COLUMNS:
        if column not in sheet.columns:
            sheet[column] = ""
    sheet = sheet.astype({c: str for c in (*SHEET_COLUMNS, *SOURCE_COLUMNS)})
    for column in (*SHEET_COLUMNS, *SOURCE_COLUMNS):
        sheet[column] = sheet[column].str.strip()
    sheet.index = pd.RangeIndex(2, len(sheet) + 2)  # file lines (the header is line 1)

    def refuse(bad: pd.Series | np.ndarray, reason: Any) -> None:
        """Rows ``bad``: stop at the first (``reason(line, row)``), or leave them all out."""
        nonlocal sheet
        rows = sheet[np.asarray(bad, dtype=bool)]
        if rows.empty:
            return
        if refused is None:
            raise ConfigError(f"{path}: {reason(rows.index[0], rows.iloc[0])}")
        refused.extend((line, reason(line, row)) for line, row in rows.iterrows())
        sheet = sheet.drop(index=rows.index)

    refuse(sheet["subject"].str.len() > MAX_SUBJECT_LENGTH,
           lambda line, row: f"column 'subject': line {line}: an ID of {len(row['subject'])} characters (at most "
                             f"{MAX_SUBJECT_LENGTH}: it names files and folders); starts {row['subject'][:20]!r}")
    if not allow_identifiers:
        refuse(sheet["subject"].map(lambda s: identifier_problem(s, "") is not None),
               lambda line, row: f"column 'subject': line {line}: {identifier_problem(row['subject'], '')}")
    dup = sheet["subject"][sheet["subject"].duplicated()].tolist()
    if dup:
        raise ConfigError(f"{path}: column 'subject': duplicate subject {dup[0]!r}")
    collisions = case_collisions(sheet["subject"])
    if collisions:
        raise ConfigError(f"{path}: column 'subject': {collisions[0][0]!r} and {collisions[0][1]!r} differ only by "
                          "case; their folders would be one folder on macOS and Windows file systems: rename one")
    refuse((sheet["dicom"] != "") & (sheet["nifti"] != ""),
           lambda line, row: f"columns 'dicom' and 'nifti': subject {row['subject']!r} has both; give exactly one "
                             "(a DICOM folder, or a folder of <modality>.nii.gz)")
    refuse((sheet["dicom"] == "") & (sheet["nifti"] == ""),
           lambda line, row: f"columns 'dicom' and 'nifti': subject {row['subject']!r} has neither; give its DICOM "
                             "folder or its folder of <modality>.nii.gz")
    refuse((sheet["tumor_mask"] != "") & ~sheet["tumor_mask_space"].isin(modalities),
           lambda line, row: f"column 'tumor_mask_space': subject {row['subject']!r} names "
                             f"{row['tumor_mask_space']!r}, not one of {', '.join(modalities)}")
    sheet["source"] = ["dicom" if d else "nifti" for d in sheet["dicom"]]
    root = path.parent
    for column in ("dicom", "nifti", "tumor_mask"):
        given = sheet[column] != ""
        sheet.loc[given, column] = [stable_path(root / p) for p in sheet.loc[given, column]]
        refuse(given & np.array([not Path(p).exists() for p in sheet[column]], dtype=bool),
               lambda line, row, c=column: f"column {c!r}: subject {row['subject']!r}: {row[c]} does not exist")
        if column != "tumor_mask":
            given = sheet[column] != ""
            refuse(given & np.array([not Path(p).is_dir() for p in sheet[column]], dtype=bool),
                   lambda line, row, c=column: f"column {c!r}: subject {row['subject']!r}: {row[c]} is not a folder")
    if not allow_identifiers:
        refuse([identifier_problem(s, d) is not None for s, d in zip(sheet["subject"], sheet["dicom"])],
               lambda line, row: f"column 'subject': line {line}: {identifier_problem(row['subject'], row['dicom'])}")
    return sheet.set_index("subject", drop=False)


def allow_identifiers(config: dict[str, Any]) -> bool:
    """ingest.allow_patient_id_as_subject: subject IDs shaped like identifiers are accepted."""
    return bool((config.get("ingest") or {}).get("allow_patient_id_as_subject", False))


def stable_path(path: Path) -> str:
    """Relative to the working directory (the project) when inside it, else absolute: job inputs and
    params then stay the same when the project folder is copied or moved, so nothing reruns."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def subjects_without_tumor_mask(samples: pd.DataFrame) -> list[str]:
    return samples.loc[samples["tumor_mask"] == "", "subject"].tolist()


def tumor_mask_needed(samples: pd.DataFrame, subject: str) -> str:
    """The subject's tumor mask; a ConfigError naming the subject when the sheet gives none."""
    mask = samples.loc[subject, "tumor_mask"]
    if not mask:
        raise ConfigError(
            f"sample sheet: column 'tumor_mask': subject {subject!r} has no tumor mask, which its "
            "tumor crop (and so training) needs. Without one only the front half can be built "
            f"(raw, n4, coreg/<modality>, brain and qc/{subject}.png targets), or remove the "
            "subject from the sheet.")
    return mask
