"""The explanation overlays the Snakemake report embeds (category "Explanation maps", rule
collect_report_overlays, and the failure analysis's page): per CNN model, the PNG overlays of its
misclassified cross-validation test patients, at most ``explain.report_misclassified`` of them (the
most confidently wrong first: farthest from the threshold), and of ``explain.report_correct``
correctly classified ones, drawn at random (cv.seed) alternately from each true class. Every
overlay is an image of a few hundred kB inside one self-contained HTML file, so a study of many
models and patients would otherwise make a report too large to open; the overlays left out stay
in explain/<model>/fold<k>/maps/ and the paper archive (reporting/overlays.tsv lists which), and
each model's caption says how many were left out."""

from __future__ import annotations

import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

#: reporting/overlays.tsv: every CNN cross-validation test patient with an overlay, and whether the report shows it.
OVERLAY_COLUMNS = ["model", "fold", "subject", "y_true", "outcome", "in_report", "overlay"]


def _with_overlay(frame: pd.DataFrame) -> pd.DataFrame:
    """Cross-validation rows whose map is a PNG overlay (a brain encoder's window has NIfTI only)."""
    paths = frame["explanation_map"].fillna("").astype(str)
    return frame[(frame["cohort"] == "cv") & paths.str.endswith(".png") & ~paths.str.contains(" ")]


def _draw(correct: pd.DataFrame, n: int, seed: int, model: str) -> set[str]:
    """``n`` subjects of ``correct`` (one model's), at random, alternately from each true class
    (positive first); the draw depends on the seed and the model's name only."""
    rng = np.random.default_rng([seed, zlib.crc32(model.encode())])
    by_class = [list(rng.permutation(sorted(correct.loc[correct["y_true"].astype(int) == y, "subject"])))
                for y in (1, 0)]
    drawn: list[str] = []
    while len(drawn) < n and any(by_class):
        for queue in by_class:
            if queue and len(drawn) < n:
                drawn.append(queue.pop(0))
    return set(drawn)


def choose_overlays(wrong: pd.DataFrame, correct: pd.DataFrame, *, n_wrong: int | None, n_correct: int,
                    seed: int) -> pd.DataFrame:
    """reporting/overlays.tsv from the misclassified (``wrong``) and correctly classified
    (``correct``) patients (oncoflow.report.failures.classified): per model, ``n_wrong`` of the
    misclassified (None: all), the farthest from their threshold first, and ``n_correct`` correct ones."""
    wrong, correct = _with_overlay(wrong), _with_overlay(correct)
    rows = []
    for model in dict.fromkeys([*wrong["model"], *correct["model"]]):
        failed = wrong[wrong["model"] == model]
        margin = (failed["probability"].astype(float) - failed["threshold"].astype(float)).abs()
        ranked = failed.assign(margin=margin).sort_values(["margin", "subject"], ascending=[False, True])
        shown = {*ranked["subject"].iloc[:n_wrong], *_draw(correct[correct["model"] == model], n_correct, seed, model)}
        for frame in (failed, correct[correct["model"] == model]):
            for r in frame.itertuples():
                rows.append({"model": model, "fold": r.fold, "subject": r.subject, "y_true": int(r.y_true),
                             "outcome": str(r.error).replace(" ", "_"), "in_report": r.subject in shown,
                             "overlay": r.explanation_map})
    return pd.DataFrame(rows, columns=OVERLAY_COLUMNS)


def left_out_text(table: pd.DataFrame, model: str, *, n_wrong: int | None, n_correct: int, seed: int) -> str:
    """The caption's sentence for ``model``: what the report shows of its overlays and where the rest are."""
    part = table[table["model"] == model]
    wrong, correct = part[part["outcome"] != "correct"], part[part["outcome"] == "correct"]
    shown_wrong, shown_correct = int(wrong["in_report"].sum()), int(correct["in_report"].sum())
    failures = (f"all {len(wrong)} cross-validation test patients it misclassified" if shown_wrong == len(wrong) else
                f"the {shown_wrong} of the {len(wrong)} cross-validation test patients it misclassified that lay "
                "farthest from the threshold")
    text = (f"The report shows the overlays of {model} for {failures} (explain.report_misclassified: "
            f"{'all' if n_wrong is None else n_wrong}) and for {shown_correct} of the {len(correct)} it classified "
            f"correctly (explain.report_correct: {n_correct}; drawn at random with seed {seed}, alternately from "
            "each class). ")
    left = len(part) - shown_wrong - shown_correct
    if not left:
        return text + "No overlay of a test patient is left out."
    return text + (f"The overlays of the other {left} of its {len(part)} test patients are left out of this report "
                   "(reporting/overlays.tsv lists them): "
                   f"``explain/{model}/fold<k>/maps/<subject>.png`` in the results folder, and under ``explain/`` "
                   "in the paper archive.")


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no second copy on disk), or a copy where the file system has none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_report_overlays(table: pd.DataFrame, results: Path, out: Path, *, n_wrong: int | None, n_correct: int,
                          seed: int) -> int:
    """``out``/<model>/<outcome>/fold<k>/<subject>.png for each overlay of ``table``
    (reporting/overlays.tsv) the report shows (the rule's report pattern) and ``out``/<model>.rst
    (the caption's sentence). Returns how many overlays the report shows."""
    out.mkdir(parents=True, exist_ok=True)
    shown = table[table["in_report"].astype(bool)]
    for r in shown.itertuples():
        source = results / r.overlay
        if not source.is_file():
            raise FileNotFoundError(f"{r.model} fold {r.fold}: overlay of test patient {r.subject} missing ({source})")
        _link_or_copy(source, out / r.model / r.outcome / f"fold{r.fold}" / f"{r.subject}.png")
    for model in dict.fromkeys(table["model"]):
        text = left_out_text(table, model, n_wrong=n_wrong, n_correct=n_correct, seed=seed)
        (out / f"{model}.rst").write_text(text + "\n", encoding="utf-8")
    return len(shown)
