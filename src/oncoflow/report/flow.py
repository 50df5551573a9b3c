"""Participant flow (CLAIM 2024 item 35, TRIPOD+AI item 20a): from the sample sheet to evaluation.

Every count and every exclusion reason comes from the run's own records: the sample sheet, the
subjects' raw images, qc/qc.tsv (flags), folds/splits.tsv (fold and role) and
tables/predictions.tsv (who was scored). oncoflow excludes nobody silently: a subject that fails
ingestion fails the run, and QC flags are reported, not acted on; so an exclusion here means a
record is missing, and the table says which one.

With sites (a ``site`` column in folds/splits.tsv, from ``cohort.site``), the ``sites`` stage
gives, per internal site, the patients tested and the folds that tested them, and the patients
that only trained (in no test fold: leave-one-site-out's sites too small or of one class); per
external site, its patients (scored by every fold's model).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from oncoflow.segment.crossfit import predicted_crop_sentence, predicted_crop_subjects

FLOW_COLUMNS = ["stage", "group", "n", "n_positive", "excluded", "reason"]


def _row(stage: str, group: str, subjects: pd.Series, labels: pd.Series, excluded: list[str] | None = None,
         reason: str = "") -> dict[str, object]:
    chosen = labels[labels.index.isin(subjects)]
    return {"stage": stage, "group": group, "n": len(chosen), "n_positive": int(chosen.sum()),
            "excluded": ", ".join(excluded or []), "reason": reason}


def participant_flow(samples: pd.DataFrame, qc: pd.DataFrame, splits: pd.DataFrame, predictions: pd.DataFrame,
                     *, ingested: list[str], external_cohorts: list[str], crop_mask: str = "manual",
                     not_cropped: dict[str, str] | None = None) -> pd.DataFrame:
    """flow.tsv: one row per stage and group (cohort, QC outcome, fold x role, model x cohort).

    ``samples`` has ``subject``, ``cohort`` and ``y`` (1 = positive); ``ingested`` lists the subjects
    whose raw images exist; ``qc`` is qc/qc.tsv; ``splits`` folds/splits.tsv; ``predictions``
    tables/predictions.tsv; ``crop_mask``: segment.crop_mask (a row names the patients cropped from
    their predicted mask, when there are any); ``not_cropped``: subject -> why its predicted mask
    was not cropped (crop.tsv ``status``): it has no CNN prediction, and the table says so."""
    labels = samples.set_index("subject")["y"].astype(int)
    listed = samples["subject"]
    rows = [_row("listed", "sample sheet", listed, labels)]
    for cohort, part in samples.groupby("cohort", sort=True):
        kind = "external" if cohort in external_cohorts else "internal"
        rows.append(_row("listed", f"{kind} cohort '{cohort}'", part["subject"], labels))
    missing = sorted(set(listed) - set(ingested))
    rows.append(_row("ingested", "images converted", pd.Series(sorted(set(listed) & set(ingested))), labels, missing,
                     "no raw images in subjects/<subject>/raw/" if missing else ""))
    flagged = qc.loc[qc["flag"].fillna("") != "", ["subject", "flag"]]
    no_qc = sorted(set(ingested) & set(listed) - set(qc["subject"]))
    rows.append(_row("quality control", "no flag", qc.loc[qc["flag"].fillna("") == "", "subject"], labels, no_qc,
                     "no row in qc/qc.tsv" if no_qc else ""))
    for _, row in flagged.iterrows():  # kept in the analysis: the flag is the reason to look
        rows.append(_row("quality control", f"flagged (kept): {row['subject']}", pd.Series([row["subject"]]), labels,
                         reason=str(row["flag"])))
    not_split = sorted(set(listed) - set(splits["subject"]))
    rows.append(_row("folds", "assigned", splits["subject"].drop_duplicates(), labels, not_split,
                     "not in folds/splits.tsv" if not_split else ""))
    for (fold, role), part in splits.groupby(["fold", "role"], sort=True):
        rows.append(_row("folds", f"fold {fold} {role}", part["subject"], labels))
    rows += _site_rows(splits, labels)
    predicted = predicted_crop_subjects(crop_mask, samples)
    if predicted:
        rows.append(_row("cropped", "from a predicted tumor mask", pd.Series(predicted), labels,
                         reason=predicted_crop_sentence(predicted, len(samples))))
    not_cropped = not_cropped or {}
    if not_cropped:  # neither trains nor is scored by a CNN model
        uncropped = sorted(not_cropped)
        rows.append(_row("cropped", "not cropped: predicted tumor mask empty or implausible", pd.Series(uncropped),
                         labels, uncropped, "; ".join(f"{s}: {not_cropped[s]}" for s in uncropped)))
    for model, part in predictions.groupby("model", sort=False):
        for cohort, role in (("cv", "test"), ("external", "external")):
            expected = set(splits.loc[splits["role"] == role, "subject"])
            if not expected:
                continue
            scored = set(part.loc[part["role"] == role, "subject"])
            lost = sorted(expected - scored)
            uncropped = [s for s in lost if s in not_cropped]
            reason = "; ".join(filter(None, [
                f"not cropped (predicted tumor mask empty or implausible): {', '.join(uncropped)}" if uncropped else "",
                "no prediction in tables/predictions.tsv" if len(uncropped) < len(lost) else ""]))
            rows.append(_row("evaluated", f"{model} ({cohort})", pd.Series(sorted(scored)), labels, lost, reason))
    return pd.DataFrame(rows, columns=FLOW_COLUMNS)


def _folds(folds: pd.Series) -> str:
    numbers = sorted(int(f) for f in folds.unique())
    return f"fold{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"


def _site_rows(splits: pd.DataFrame, labels: pd.Series) -> list[dict[str, object]]:
    """Per internal site: tested (with the folds), only trained; per external site: its patients."""
    if "site" not in splits.columns:
        return []
    rows = []
    sites = splits.assign(site=splits["site"].astype(str))
    for site, part in sites.groupby("site", sort=True):
        external = part.loc[part["role"] == "external", "subject"].drop_duplicates()
        internal = part.loc[part["role"] != "external", "subject"].drop_duplicates()
        test = part[part["role"] == "test"]
        tested = test["subject"].drop_duplicates()
        if len(tested):
            rows.append(_row("sites", f"site '{site}': tested ({_folds(test['fold'])})", tested, labels))
        trained_only = internal[~internal.isin(tested)]
        if len(trained_only):
            rows.append(_row("sites", f"site '{site}': trained only", trained_only, labels,
                             reason="in no test fold of folds/splits.tsv"))
        if len(external):
            rows.append(_row("sites", f"site '{site}': external", external, labels))
    return rows


def plot_flow(flow: pd.DataFrame, png: str | Path) -> None:
    """A top-down flow diagram: listed -> ingested -> QC -> folds -> evaluated, exclusions on the side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def count(stage: str, group: str) -> dict[str, object]:
        return flow[(flow["stage"] == stage) & (flow["group"] == group)].iloc[0].to_dict()

    listed, ingested = count("listed", "sample sheet"), count("ingested", "images converted")
    clean = count("quality control", "no flag")
    flagged = flow[flow["group"].str.startswith("flagged")]
    assigned = count("folds", "assigned")
    cohorts = flow[(flow["stage"] == "listed") & (flow["group"] != "sample sheet")]
    evaluated = flow[flow["stage"] == "evaluated"]
    folds = flow[(flow["stage"] == "folds") & (flow["group"] != "assigned")]
    sites = flow[flow["stage"] == "sites"]
    site_lines = [f"{g.removeprefix('site ')}: {n}" for g, n in zip(sites["group"], sites["n"])]
    trained_only = [f"{g.removeprefix('site ').removesuffix(': trained only')} ({n})"
                    for g, n in zip(sites["group"], sites["n"]) if g.endswith(": trained only")]
    per_fold: dict[str, list[str]] = {}
    for group, n in zip(folds["group"], folds["n"]):
        _, fold, role = group.split(" ", 2)
        per_fold.setdefault(fold, []).append(f"{role} {n}")
    scored: dict[str, set[int]] = {}
    for group, n in zip(evaluated["group"], evaluated["n"]):
        scored.setdefault(group.rsplit(" (", 1)[1].rstrip(")"), set()).add(int(n))
    n_models = evaluated["group"].str.rsplit(" (", n=1).str[0].nunique()
    boxes = [
        f"Listed in the sample sheet\nn = {listed['n']} ({listed['n_positive']} positive)\n"
        + "\n".join(f"{g}: {n}" for g, n in zip(cohorts["group"], cohorts["n"])),
        f"Images ingested\nn = {ingested['n']}",
        f"Quality control\nno flag: {clean['n']}   flagged and kept: {len(flagged)}",
        f"Assigned to folds and roles: n = {assigned['n']}\n"
        + "\n".join(f"fold {k}: {', '.join(v)}" for k, v in per_fold.items()),
        *(["By site\n" + "\n".join(site_lines)] if site_lines else []),
        f"Evaluated ({n_models} model{'' if n_models == 1 else 's'})\n"
        + "\n".join(f"{'cross-validation' if c == 'cv' else c}: n = {'/'.join(map(str, sorted(ns)))} per model"
                    for c, ns in scored.items()),
    ]
    side = [
        "",
        f"Not ingested: {ingested['excluded'] or 'none'}",
        "Flagged (kept): " + (", ".join(s.split(": ", 1)[1] for s in flagged["group"]) or "none"),
        f"Not assigned: {assigned['excluded'] or 'none'}",
        *(["Only trained on: " + (", ".join(trained_only) or "none")] if site_lines else []),
        "Not scored: " + (", ".join(sorted({s for e in evaluated["excluded"] for s in e.split(', ') if s})) or "none"),
    ]
    # each box as tall as its lines (inches: 9-point lines), arrows from one box's edge to the next's
    heights = [0.16 * (text.count("\n") + 1) + 0.2 for text in boxes]
    gap = 0.5
    total = sum(heights) + gap * len(boxes)
    fig, ax = plt.subplots(figsize=(9, max(total, 4.0)))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(total, 4.0))
    top = max(total, 4.0) - gap / 2
    for i, (text, note, height) in enumerate(zip(boxes, side, heights)):
        y = top - height / 2
        ax.text(0.33, y, text, ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round", "facecolor": "#eef3fb", "edgecolor": "#3b5b92"})
        if note:
            ax.text(0.8, y, "\n".join(note[k:k + 40] for k in range(0, len(note), 40)), ha="center", va="center",
                    fontsize=8, color="#8a1c1c",
                    bbox={"boxstyle": "round", "facecolor": "#fbeeee", "edgecolor": "#8a1c1c"})
        if i:
            ax.annotate("", xy=(0.33, top + 0.05), xytext=(0.33, top + gap - 0.05), arrowprops={"arrowstyle": "->"})
        top -= height + gap
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
