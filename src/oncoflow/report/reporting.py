"""The reporting folder (results/<study>/reporting/): one function per rule, paths in, files out.

- participant flow (flow.tsv, flow.png)          oncoflow.report.flow
- characteristics by partition (characteristics.tsv/.md)   oncoflow.report.characteristics
- failure analysis (failures.tsv/.md)             oncoflow.report.failures
- filled checklists (checklist_<name>.tsv/.md)    oncoflow.report.checklists
- the model card (model_card.md/.json/.html)      oncoflow.report.model_card (rule in model_card.smk)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from oncoflow.crop.tumor_crop import NOT_CROPPED_STATUS
from oncoflow.report.characteristics import RANDOM, characteristics_table
from oncoflow.report.checklists import checklist_markdown, fill_checklist, run_facts
from oncoflow.report.failures import MapIndex, classified, failures_markdown, misclassified
from oncoflow.report.flow import participant_flow, plot_flow
from oncoflow.run_facts import ReportFacts


def _tsv(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"subject": str})


def _markdown_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |\n"
                          for row in df.itertuples(index=False))


def read_sheet(settings: dict[str, Any]) -> pd.DataFrame:
    """The sample sheet as text, with ``y`` = 1 for the study's positive class."""
    sheet = pd.read_csv(settings["cohort"]["samples"], sep="\t", dtype=str, keep_default_na=False)
    study = settings["study"]
    return sheet.assign(y=(sheet[study["label"]] == str(study["positive"])).astype(int))


def ingested_subjects(subjects: list[str], raw_images: list[str]) -> list[str]:
    """Subjects whose raw reference image was written (``raw_images`` in the order of ``subjects``)."""
    if len(subjects) != len(raw_images):
        raise ValueError(f"{len(subjects)} subjects but {len(raw_images)} raw images")
    return [s for s, path in zip(subjects, raw_images) if Path(path).is_file()]


def write_participant_flow(settings: dict[str, Any], *, qc: str, splits: str, predictions: str,
                           raw_images: list[str], subjects: list[str], tsv: str, png: str,
                           crop_reports: list[str] = ()) -> None:
    """``settings``: :func:`sheet_settings` of the config; ``raw_images``: each subject's raw
    reference image (subjects/<subject>/raw/), in the order of ``subjects``; ``crop_reports``: the
    crop.tsv of each subject cropped from a predicted mask (a ``status`` says why one was not)."""
    samples = read_sheet(settings)
    not_cropped = {}
    for report in crop_reports:
        row = _tsv(report).iloc[0]
        if str(row.get("status", "")).startswith(NOT_CROPPED_STATUS):
            not_cropped[str(row["subject"])] = str(row["status"])
    flow = participant_flow(samples, _tsv(qc), _tsv(splits), _tsv(predictions),
                            ingested=ingested_subjects(subjects, raw_images),
                            external_cohorts=list(settings["cohort"]["external"]),
                            crop_mask=settings.get("crop_mask", "manual"), not_cropped=not_cropped)
    flow.to_csv(tsv, sep="\t", index=False)
    plot_flow(flow, png)


def write_characteristics(settings: dict[str, Any], *, splits: str, tsv: str, md: str) -> None:
    """``settings``: :func:`sheet_settings` of the config."""
    site = settings["cohort"].get("site")
    table = characteristics_table(read_sheet(settings), _tsv(splits), label=settings["study"]["label"],
                                  clinical=settings["clinical"], external_cohorts=list(settings["cohort"]["external"]),
                                  site=site)
    table.to_csv(tsv, sep="\t", index=False)
    sites = (f" Sites are the sample sheet's `{site}` column; where no site lies in two of the compared groups "
             "they differ in site by design, and no test is run." if site else "")
    folds = ("Test folds drawn at random are described, not tested: a difference between randomised groups can "
             "only be chance (CONSORT 2010, item 15)." if (table["test across folds"] == RANDOM).any()
             else "The test folds are grouped by site, so they are not random and are tested.")
    Path(md).write_text("# Characteristics by partition\n\nMedian [IQR] or n (%). Cohorts are not random and are "
                        f"tested (Fisher/chi-square, Mann-Whitney/Kruskal-Wallis). {folds}"
                        f"{sites}\n\n" + _markdown_table(table), encoding="utf-8")


def write_failures(*, predictions: str, qc: str, metrics: str, tsv: str, md: str, overlays: str,
                   explain: dict[str, Any], seed: int, cnn: list[str] | tuple[str, ...] = (),
                   explanations: str | None = None) -> None:
    """``cnn``: the run's CNN models; ``explanations``: tables/explanation_sanity.tsv (None: explain
    off); the maps are read under the results folder (the reporting folder's parent). ``overlays``:
    which cross-validation overlays the report embeds (explain.report_misclassified and
    report_correct, drawn with ``seed``; oncoflow.report.overlays); failures.md links the others."""
    from oncoflow.report.explanations import read_explanations
    from oncoflow.report.overlays import choose_overlays

    maps = MapIndex(frozenset(cnn), read_explanations(explanations), Path(tsv).resolve().parents[1])
    preds, qc_table = _tsv(predictions), _tsv(qc)
    failures = misclassified(preds, qc_table, maps)
    failures.to_csv(tsv, sep="\t", index=False)
    correct = classified(preds, qc_table, maps, wrong=False)
    table = choose_overlays(failures, correct, n_wrong=explain["report_misclassified"],
                            n_correct=int(explain["report_correct"]), seed=seed)
    table.to_csv(overlays, sep="\t", index=False)
    shown = {(r.model, r.subject) for r in table.itertuples() if r.in_report}
    m = _tsv(metrics)
    Path(md).write_text(failures_markdown(failures, {(r.model, r.cohort): int(r.n) for r in m.itertuples()},
                                          correct, shown), encoding="utf-8")


def write_checklist(name: str, plan: ReportFacts, *, splits: str, qc: str, metrics: str, failures: str,
                    tsv: str, md: str, selection: str | None = None, explanations: str | None = None) -> None:
    """``plan``: the run's facts (oncoflow.run_facts); ``explanations``: tables/explanation_sanity.tsv."""
    from oncoflow.report.explanations import read_explanations
    from oncoflow.report.selection import read_selection

    facts = run_facts(plan, _tsv(splits), _tsv(qc), _tsv(metrics), _tsv(failures), read_selection(selection),
                      read_explanations(explanations))
    table = fill_checklist(name, facts)
    table.to_csv(tsv, sep="\t", index=False)
    Path(md).write_text(checklist_markdown(name, table), encoding="utf-8")
