"""The reporting folder's files (for rule all, the report and the archive) and the params of the
rules that read the sample sheet: what the study plan needs at parse time, without the modules that
make the files (scipy.stats, matplotlib; about 1 CPU s to import at every job's start)."""

from __future__ import annotations

from typing import Any

from oncoflow.report.checklists import checklists_for


def sheet_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The part of the config that the flow and Table 1 read (their rules' params: a change
    elsewhere in the config does not rerun them)."""
    study = {k: v for k, v in config["study"].items() if k != "declarations"}  # read by methods.md only
    crop_mask = (config.get("segment") or {}).get("crop_mask", "manual")  # named in the flow when not manual
    return {"study": study, "cohort": config["cohort"],
            "clinical": list((config.get("radiomics") or {}).get("clinical") or []),
            **({"crop_mask": crop_mask} if crop_mask != "manual" else {})}


def reporting_targets(results: str, config: dict[str, Any]) -> list[str]:
    """The reporting folder's files for rule all (and so for the report and the archive)."""
    folder = f"{results}/reporting"
    return [f"{folder}/flow.tsv", f"{folder}/flow.png", f"{folder}/characteristics.tsv", f"{folder}/failures.tsv",
            *(f"{folder}/model_card.{ext}" for ext in ("md", "json", "html")),
            *(f"{folder}/checklist_{name}.{ext}" for name in checklists_for(config) for ext in ("tsv", "md")),
            *report_pages(results)]


def report_pages(results: str) -> list[str]:
    """Rule render_report_pages' outputs (oncoflow.report.pages)."""
    return [f"{results}/reporting/{name}.html" for name in ("summary", "characteristics", "failures", "flow", "checklists")] + [
        f"{results}/tables/{name}.html" for name in ("metrics", "metrics_per_fold", "comparisons")] + [
        f"{results}/qc/qc.html"]
