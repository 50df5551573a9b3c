"""Per-subject and cohort quality control of the preprocessing (what a user looks at first).

- ``subject_qc``: one row of numbers for a subject (registration mutual information before/after per
  modality, brain volume and plausibility flag, the second opinion's volume and Dice, tumor volume and the fraction inside the brain,
  per-modality coverage and intensity statistics inside the brain) and the subject-level flags.
- ``plot_montage``: every co-registered modality through the tumor centre (or the brain's, without a
  tumor mask) in three orthogonal slices, brain outline in cyan, the second opinion's brain outline
  dashed in yellow, tumor outline in magenta, flags in red; with atlas space (preprocess.atlas), a last
  row: the reference on the template grid, the template's brain outline in green over the subject's.
- ``summarize_cohort``: the rows of all subjects plus cohort-level outlier flags (brain volume, MI after
  registration, intensity spread, a series that matches its reference unlike the cohort's), ``flag`` first;
  ``summarize_with_failures`` the same with the failed subjects' errors first (``snakemake --keep-going``).

All images are read on the reference grid (coreg/, brain/), in closest-canonical (RAS) orientation.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

# Subject-level thresholds.
MIN_COVERAGE = 0.9  # share of the brain where a modality has signal (field of view, registration)
MIN_TUMOR_IN_BRAIN = 0.9  # crop_tumor refuses below 0.5; QC warns earlier
MI_TOLERANCE = 0.01  # ANTs Mattes MI is negative, lower is better: flag a rise above this
MIN_ATLAS_DICE = 0.9  # brain mask vs the template's after registration (TCGA-FG-6692 to MNI152: 0.96)
# Cohort-level outliers: robust z-score (median / 1.4826 MAD) beyond OUTLIER_Z *and* at least a
# minimum distance from the median (a very homogeneous cohort has a tiny MAD), with enough subjects.
OUTLIER_Z = 3.5
MIN_COHORT = 5
MIN_BRAIN_DEVIATION_ML = 200.0
MIN_MI_DEVIATION = 0.15  # about half of what a registration gains (TCGA-FG-6692: 0.25-0.30)
MIN_CV_DEVIATION = 0.15  # sd/mean inside the brain, e.g. a bias correction gone wrong
# Another patient's series (NIfTI input has no PatientID to compare): a modality that matches its
# reference unlike the rest of the cohort. Score = robust z of the MI after registration (worse side
# only) + |robust z| of the tumor contrast (does the tumor drawn on the reference show in it as in the
# others?); flagged when both the score and the contrast part are beyond their thresholds. Measured on
# the tiny demo cohort (make_demo_cohort(14, seed=3, voxel_scale=2.0): each subject's own series and 4
# other subjects' series registered onto its reference, 56 swaps per modality): no own series beyond
# both (highest contrast z 3.0 with score 3.0; highest score 6.0, a t2 with contrast z 0.7); swaps
# flagged: flair 73%, t1 84%, t2 100%. Only one demo cohort was measured: a swap is not always caught.
MISMATCH_SCORE = 5.0
MISMATCH_CONTRAST_Z = 2.5


@dataclass(frozen=True)
class AtlasView:
    """A subject on the atlas (register_to_atlas's outputs): the reference image, the subject's brain
    mask, the template's brain mask and the tumor mask, all on the template grid."""

    image: Path
    brain_mask: Path
    template_mask: Path
    tumor_mask: Path


@dataclass
class SubjectQC:
    row: dict[str, object]
    flags: list[str] = field(default_factory=list)
    centre: tuple[int, int, int] = (0, 0, 0)  # voxel (canonical) the montage slices go through


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(nib.load(path))
    return np.asarray(img.dataobj, dtype=np.float32), np.asarray(img.header.get_zooms()[:3], float)


def _read_tsv(path: Path | None) -> pd.DataFrame:
    if path is None or not Path(path).is_file():
        return pd.DataFrame()
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _number(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _centre(mask: np.ndarray) -> tuple[int, int, int]:
    """The voxel the montage's slices go through: the mask's centre of mass, or the grid's centre."""
    if not mask.any():
        return tuple(s // 2 for s in mask.shape)  # type: ignore[return-value]
    return tuple(int(round(c)) for c in np.argwhere(mask).mean(0))  # type: ignore[return-value]


def subject_qc(
    subject: str,
    images: dict[str, Path],
    brain_mask: Path,
    *,
    reference: str,
    registration: Path | None = None,
    brain_report: Path | None = None,
    tumor_mask: Path | None = None,
    atlas_report: Path | None = None,
) -> SubjectQC:
    """Numbers and flags of one subject; ``images`` are the co-registered (coreg/) modalities;
    ``atlas_report``: register_to_atlas's atlas.tsv (preprocess.atlas), whose brain-mask Dice with the
    template's goes into the row and flags the subject below MIN_ATLAS_DICE."""
    brain, zooms = _load(brain_mask)
    brain = brain > 0.5
    voxel_ml = float(np.prod(zooms)) / 1000.0
    flags: list[str] = []
    row: dict[str, object] = {"subject": subject, "reference": reference}

    report = _read_tsv(brain_report)
    backend = report["backend"].iloc[0] if "backend" in report else ""
    row["brain_backend"] = backend
    row["brain_ml"] = round(float(brain.sum()) * voxel_ml, 1)
    for column in ("second_backend", "second_ml", "agreement_dice"):  # the second opinion
        row[column] = report[column].iloc[0] if column in report else ""
    brain_flag = report["flag"].iloc[0] if "flag" in report else ""
    row["brain_flag"] = brain_flag
    if brain_flag:
        flags.append(brain_flag)
    if not brain.any():
        flags.append("brain mask is empty")

    if tumor_mask is not None:
        tumor = _load(tumor_mask)[0] > 0.5
        row["tumor_ml"] = round(float(tumor.sum()) * voxel_ml, 2)
        inside = float((tumor & brain).sum() / tumor.sum()) if tumor.any() else float("nan")
        row["tumor_in_brain"] = round(inside, 3) if tumor.any() else ""
        if not tumor.any():
            flags.append("tumor mask is empty")
        elif inside < MIN_TUMOR_IN_BRAIN:
            flags.append(f"only {inside:.0%} of the tumor lies inside the brain mask")
        centre_mask = tumor if tumor.any() else brain
    else:
        row["tumor_ml"] = ""
        row["tumor_in_brain"] = ""
        centre_mask = brain
    centre = _centre(centre_mask)

    reg = _read_tsv(registration)
    reg = reg.set_index("modality") if "modality" in reg else reg
    for modality, path in images.items():
        arr = _load(path)[0]
        before = after = float("nan")
        if modality != reference and modality in reg.index:
            before, after = _number(reg.at[modality, "mi_before"]), _number(reg.at[modality, "mi_after"])
        row[f"mi_before_{modality}"] = "" if np.isnan(before) else round(before, 4)
        row[f"mi_after_{modality}"] = "" if np.isnan(after) else round(after, 4)
        if after > before + MI_TOLERANCE:
            flags.append(f"{modality}: registration lowered the mutual information (MI {before:.3f} -> {after:.3f})")
        values = arr[brain]
        if values.size:
            coverage = float(np.mean(values != 0))
            p1, p99 = np.percentile(values, [1, 99])
            stats = {"coverage": round(coverage, 3), "mean": round(float(values.mean()), 2),
                     "sd": round(float(values.std()), 2), "p1": round(float(p1), 2), "p99": round(float(p99), 2),
                     "tumor_contrast": _tumor_contrast(arr, values, tumor if tumor_mask is not None else None)}
            if coverage < MIN_COVERAGE:
                flags.append(f"{modality}: no signal in {1 - coverage:.0%} of the brain "
                             "(field of view or registration)")
            if float(values.std()) == 0.0:
                flags.append(f"{modality}: constant inside the brain")
        else:
            stats = {k: "" for k in ("coverage", "mean", "sd", "p1", "p99", "tumor_contrast")}
        row.update({f"{k}_{modality}": v for k, v in stats.items()})
    if atlas_report is not None:
        dice = _number(_read_tsv(atlas_report).get("brain_dice_template", pd.Series([""])).iloc[0])
        row["atlas_dice"] = "" if np.isnan(dice) else dice
        if not dice >= MIN_ATLAS_DICE:
            flags.append(f"atlas: brain mask Dice {dice:.3f} with the template's (below {MIN_ATLAS_DICE}): "
                         "the registration to the atlas failed or the brain mask is wrong")
    row["flag"] = "; ".join(flags)
    return SubjectQC(row=row, flags=flags, centre=centre)


def _tumor_contrast(arr: np.ndarray, brain_values: np.ndarray, tumor: np.ndarray | None) -> object:
    """(mean in the tumor - median in the brain) / sd in the brain: how the tumor drawn on the
    reference shows in this modality ("" without a tumor mask or signal)."""
    sd = float(brain_values.std())
    if tumor is None or not tumor.any() or sd == 0:
        return ""
    return round((float(arr[tumor].mean()) - float(np.median(brain_values))) / sd, 3)


def _robust_z(values: pd.Series, reference: pd.Series | None = None) -> pd.Series:
    """Robust z of ``values`` against the median and MAD of ``reference`` (default: ``values``)."""
    x = pd.to_numeric(values, errors="coerce")
    ref = x if reference is None else pd.to_numeric(reference, errors="coerce")
    median = ref.median()
    mad = 1.4826 * (ref - median).abs().median()
    if not np.isfinite(mad) or mad == 0:
        return pd.Series(0.0, index=values.index)
    return (x - median) / mad


def _outliers(values: pd.Series, min_deviation: float, *, both_sides: bool,
              reference: pd.Series | None = None) -> tuple[pd.Index, float]:
    """Rows far from the cohort's median (robust z and an absolute floor); and the median."""
    x = pd.to_numeric(values, errors="coerce")
    z = _robust_z(values, reference)
    median = (x if reference is None else pd.to_numeric(reference, errors="coerce")).median()
    deviation = (x - median).abs() if both_sides else x - median
    far = (z.abs() if both_sides else z) > OUTLIER_Z
    return values.index[far & (deviation >= min_deviation)], median


def _add_cv(table: pd.DataFrame, modalities: list[str]) -> None:
    for modality in modalities:
        if f"sd_{modality}" in table and f"mean_{modality}" in table:
            sd, mean = (pd.to_numeric(table[f"{k}_{modality}"], errors="coerce") for k in ("sd", "mean"))
            table[f"cv_{modality}"] = (sd / mean.where(mean != 0)).round(3)


def cohort_statistics(table: pd.DataFrame, modalities: list[str]) -> list[str]:
    """The columns judged against a cohort: brain volume, and per modality the MI after registration,
    the intensity spread and the tumor contrast (the mismatch score's parts)."""
    names = ["brain_ml", *(f"{k}_{m}" for m in modalities for k in ("mi_after", "cv", "tumor_contrast"))]
    return [c for c in names if c in table.columns]


def qc_reference(table: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
    """The training cohort's distribution of every cohort-level statistic (``qc.tsv`` of the study),
    for the bundle: unflagged subjects' values only, without subject IDs, each column sorted on its
    own (a distribution, not rows that could be linked to a patient)."""
    clean = table[pd.to_numeric(table["n_flags"], errors="coerce").fillna(0) == 0] if "n_flags" in table else table
    clean = clean if len(clean) >= MIN_COHORT else table
    columns = cohort_statistics(clean, modalities)
    return pd.DataFrame({c: np.sort(pd.to_numeric(clean[c], errors="coerce").to_numpy()) for c in columns})


def summarize_cohort(rows: list[pd.DataFrame], modalities: list[str],
                     reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per subject, ``flag`` gathering subject and cohort-level findings, flagged first.
    Adds ``cv_<modality>`` (sd/mean inside the brain). The cohort-level checks compare each subject
    with ``reference`` (the training cohort's :func:`qc_reference`, in predict: a single new subject
    is judged too) when it has MIN_COHORT subjects, else with the table itself when it has; else they
    are skipped. ``cohort_check`` says which, for every row."""
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["subject", "flag"])
    table["flag"] = ["" if pd.isna(v) else str(v) for v in table["flag"]]
    _add_cv(table, modalities)
    extra: dict[int, list[str]] = {i: [] for i in table.index}
    if reference is not None and len(reference) >= MIN_COHORT:
        base: pd.DataFrame | None = reference
        table["cohort_check"] = f"against the training cohort ({len(reference)} subjects)"
    elif len(table) >= MIN_COHORT:
        base = table
        table["cohort_check"] = f"against this cohort ({len(table)} subjects)"
    else:
        base = None
        table["cohort_check"] = (f"skipped: {len(table)} subject(s), fewer than {MIN_COHORT}, and no training cohort "
                                 "to compare with (brain volume, MI, intensity spread and series mismatch not judged)")
    if base is not None:
        own = base is table

        def ref(column: str) -> pd.Series | None:
            return None if own else (base[column] if column in base else pd.Series(dtype=float))

        far, median = _outliers(table["brain_ml"], MIN_BRAIN_DEVIATION_ML, both_sides=True, reference=ref("brain_ml"))
        for i in far:
            extra[i].append(f"brain volume {float(table.at[i, 'brain_ml']):.0f} mL is a cohort outlier "
                            f"(median {median:.0f} mL)")
        for modality in modalities:
            checks = ((f"mi_after_{modality}", MIN_MI_DEVIATION, "MI after registration"),  # higher is worse
                      (f"cv_{modality}", MIN_CV_DEVIATION, "intensity spread in the brain (sd/mean)"))
            for column, floor, what in checks:
                if column not in table or pd.to_numeric(table[column], errors="coerce").isna().all():
                    continue
                far, median = _outliers(table[column], floor, both_sides=False, reference=ref(column))
                for i in far:
                    extra[i].append(f"{modality}: {what} {float(table.at[i, column]):.3f} is a cohort "
                                    f"outlier (median {median:.3f})")
        _flag_mismatched_series(table, modalities, extra, ref)
    table["flag"] = ["; ".join(filter(None, [table.at[i, "flag"], *extra[i]])) for i in table.index]
    table.insert(1, "flag", table.pop("flag"))
    table.insert(2, "n_flags", [len(f.split("; ")) if f else 0 for f in table["flag"]])
    return table.sort_values(["n_flags", "subject"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _flag_mismatched_series(table: pd.DataFrame, modalities: list[str], extra: dict[int, list[str]],
                            ref: Callable[[str], pd.Series | None]) -> None:
    """Adds ``mismatch_<modality>`` (the score of MISMATCH_SCORE) for the modalities registered onto
    the reference of subjects with a tumor mask, and a flag beyond both thresholds unless the MI is
    flagged already. ``ref(column)``: the values to judge against (None: the table's own)."""
    for modality in modalities:
        mi, contrast = (f"{k}_{modality}" for k in ("mi_after", "tumor_contrast"))
        if mi not in table or contrast not in table or pd.to_numeric(table[mi], errors="coerce").isna().all():
            continue
        z_mi, z_contrast = _robust_z(table[mi], ref(mi)).clip(lower=0), _robust_z(table[contrast], ref(contrast))
        score = (z_mi + z_contrast.abs()).where(pd.to_numeric(table[contrast], errors="coerce").notna())
        table[f"mismatch_{modality}"] = score.round(2)
        for i in table.index[(score > MISMATCH_SCORE) & (z_contrast.abs() > MISMATCH_CONTRAST_Z)]:
            if any(f.startswith(f"{modality}: MI after registration") for f in extra[i]):
                continue
            extra[i].append(f"{modality}: matches the reference unlike the cohort (score {score[i]:.1f}: MI after "
                            f"registration z {z_mi[i]:.1f}, tumor contrast z {z_contrast[i]:.1f}): another "
                            "patient's or another sequence's series? Check the montage and the input file")


def summarize_with_failures(rows: list[pd.DataFrame], errors: dict[str, str], modalities: list[str]) -> pd.DataFrame:
    """The cohort table after a run in which subjects failed: ``summarize_cohort`` of the rows there
    are, then the subjects of ``errors`` first, the error leading their flag (a row of its own for a
    subject without one)."""
    done = summarize_cohort(rows, modalities)
    own = done["subject"].isin(list(errors))
    for i in done.index[own]:
        done.at[i, "flag"] = "; ".join(filter(None, [errors[done.at[i, "subject"]], done.at[i, "flag"]]))
        done.at[i, "n_flags"] += 1
    alone = [s for s in errors if s not in set(done["subject"])]
    failed = pd.DataFrame({"subject": alone, "flag": [errors[s] for s in alone], "n_flags": 1})
    table = pd.concat([done[own], failed, done[~own]], ignore_index=True)
    return table[list(dict.fromkeys([*done, *failed]))]


# --- montage ----------------------------------------------------------------------------------------------


def _window(arr: np.ndarray, brain: np.ndarray) -> tuple[float, float]:
    values = arr[brain] if brain.any() else arr[arr != 0]
    if values.size == 0:
        return float(arr.min()), float(arr.max()) + 1e-6
    lo, hi = np.percentile(values, [0.5, 99.5])
    return float(lo), float(max(hi, lo + 1e-6))


def _views(arr: np.ndarray, centre: tuple[int, int, int], zooms: np.ndarray):
    """(name, 2D array to show with origin lower, aspect) for axial, coronal, sagittal."""
    i, j, k = centre
    return [
        ("axial", arr[:, :, k].T, zooms[1] / zooms[0]),
        ("coronal", arr[:, j, :].T, zooms[2] / zooms[0]),
        ("sagittal", arr[i, :, :].T, zooms[2] / zooms[1]),
    ]


Outline = tuple[np.ndarray, str, float, str]  # mask, colour, line width, line style


def _draw_row(axes, arr: np.ndarray, zooms: np.ndarray, centre: tuple[int, int, int], window_mask: np.ndarray,
              outlines: list[Outline], *, titles: bool) -> None:
    """One montage row: three orthogonal slices of ``arr`` through ``centre`` with mask outlines."""
    lo, hi = _window(arr, window_mask)
    outline_views = [(_views(mask.astype(np.float32), centre, zooms), colour, width, style)
                     for mask, colour, width, style in outlines]
    for c, (view, image, aspect) in enumerate(_views(arr, centre, zooms)):
        ax = axes[c]
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, origin="lower", aspect=aspect, interpolation="nearest")
        for views, colour, width, style in outline_views:
            if views[c][1].any():
                ax.contour(views[c][1], levels=[0.5], colors=colour, linewidths=width, linestyles=style)
        ax.text(0.98, 0.03, "A" if view == "sagittal" else "R", transform=ax.transAxes, ha="right",
                va="bottom", color="yellow", fontsize=8)  # which side is which (neurological view)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles:
            ax.set_title(view, fontsize=9)


def modality_label(row: dict, modality: str) -> str:
    """A montage row's label: the modality and its registration's Mattes MI before and after, with
    the direction that is better (ANTs' MI is negative; lower is better aligned)."""
    if modality == row.get("reference"):
        return f"{modality} (reference)"
    before, after = (_number(row.get(f"mi_{when}_{modality}")) for when in ("before", "after"))
    if np.isnan(after):
        return modality
    return f"{modality}\nMI {before:.2f} → {after:.2f}\n(lower = better aligned)"


def plot_montage(
    qc: SubjectQC,
    images: dict[str, Path],
    brain_mask: Path,
    out: Path,
    *,
    tumor_mask: Path | None = None,
    second_mask: Path | None = None,
    atlas: AtlasView | None = None,
    predicted_mask: Path | None = None,
    dpi: int = 90,
) -> None:
    """PNG: a row per modality, three orthogonal slices through ``qc.centre``; outlines of the brain
    mask (cyan), the second opinion's brain mask (dashed yellow), tumor (magenta) and the segmenter's
    predicted tumor (``predicted_mask``, dashed orange; segment); with ``atlas``, a
    last row: the reference on the template grid, the template's brain outline (green) over the
    subject's (cyan) and the tumor; subject ID and numbers in the title, flags in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    brain, zooms = _load(brain_mask)
    brain = brain > 0.5
    outlines: list[Outline] = [(brain, "cyan", 0.8, "solid")]
    if second_mask is not None:
        outlines.append((_load(second_mask)[0] > 0.5, "yellow", 0.7, "dashed"))
    if tumor_mask is not None:
        outlines.append((_load(tumor_mask)[0] > 0.5, "magenta", 0.9, "solid"))
    predicted_text = ""
    centre = qc.centre
    if predicted_mask is not None:
        predicted = _load(predicted_mask)[0] > 0.5
        outlines.append((predicted, "orange", 0.9, "dashed"))
        if tumor_mask is None and predicted.any():  # no manual tumor: slice through the predicted one
            centre = _centre(predicted)
        predicted_text = (f" | predicted tumor (dashed orange) {predicted.sum() * np.prod(zooms) / 1000:.1f} mL"
                          if predicted.any() else " | predicted tumor mask empty")
    row = qc.row
    n = len(images) + (atlas is not None)
    fig, axes = plt.subplots(n, 3, figsize=(9.0, 2.7 * n + 1.4), squeeze=False,
                             gridspec_kw={"hspace": 0.12, "wspace": 0.02})
    for r, (modality, path) in enumerate(images.items()):
        _draw_row(axes[r], _load(path)[0], zooms, centre, brain, outlines, titles=r == 0)
        axes[r, 0].set_ylabel(modality_label(row, modality), fontsize=9)
    if atlas is not None:
        template, atlas_zooms = _load(atlas.template_mask)
        template = template > 0.5
        atlas_tumor = _load(atlas.tumor_mask)[0] > 0.5
        centre_mask = atlas_tumor if atlas_tumor.any() else template
        _draw_row(axes[-1], _load(atlas.image)[0], atlas_zooms, _centre(centre_mask), template,
                  [(template, "lime", 0.9, "solid"), (_load(atlas.brain_mask)[0] > 0.5, "cyan", 0.7, "solid"),
                   (atlas_tumor, "magenta", 0.9, "solid")], titles=n == 1)
        dice = _number(row.get("atlas_dice"))
        axes[-1, 0].set_ylabel(f"{row.get('reference')} on the atlas\n(template brain green)\nbrain Dice "
                               + ("n/a" if np.isnan(dice) else f"{dice:.3f}"), fontsize=9)
    if row.get("tumor_in_brain", "") != "":
        tumor_text = f"tumor (magenta) {row['tumor_ml']} mL, {float(row['tumor_in_brain']):.0%} in the brain"
    else:
        tumor_text = "tumor mask empty" if tumor_mask is not None else "no tumor mask"
    fig.suptitle(f"{row['subject']}", fontsize=13, fontweight="bold", y=0.995)
    second_text = ""
    if row.get("second_backend"):
        dice = _number(row.get("agreement_dice"))
        second_text = (f" | {row['second_backend']} (dashed yellow) {row.get('second_ml')} mL, Dice "
                       + ("n/a" if np.isnan(dice) else f"{dice:.3f}"))
    subtitle = (f"brain mask (cyan, {row.get('brain_backend') or '?'}) {row['brain_ml']} mL{second_text} | "
                f"{tumor_text}{predicted_text} | slices through voxel {centre}")
    subtitle = "\n".join(textwrap.wrap(subtitle, 125))  # with the second opinion it outgrows the figure
    flags = "\n".join(textwrap.wrap("FLAGS: " + "; ".join(qc.flags), 110)) if qc.flags else "no flags"
    extra = subtitle.count("\n")
    fig.text(0.5, 1 - 0.45 / fig.get_figheight(), subtitle, ha="center", va="top", fontsize=8.5)
    fig.text(0.5, 1 - (0.7 + 0.15 * extra) / fig.get_figheight(), flags, ha="center", va="top", fontsize=9,
             color="red" if qc.flags else "green", fontweight="bold" if qc.flags else "normal")
    lines = flags.count("\n") + 1 + extra
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.01, top=1 - (0.95 + 0.17 * lines) / fig.get_figheight())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, metadata={"Software": None})
    plt.close(fig)
