"""Re-derive a restored archive's tables and figures from its predictions, splits, sample sheet and
config with this package's own functions, and compare every cell (`oncoflow verify-archive`).

MANIFEST.sha256 can be recomputed by whoever edits an archive; the numbers cannot, unless the
predictions are edited too. What is recomputed, from what:

- ``tables/metrics*``, ``tables/predictions.tsv``: ``evaluate_study`` on the fold predictions that
  ``tables/predictions.tsv`` holds (without the threshold and risk it derived) and ``folds/splits.tsv``;
- ``tables/comparisons*``: ``compare_study``; ``figures/<curve>.tsv``: ``write_curves`` (both from
  the recomputed predictions table, as their rules do);
- ``figures/<kind>.png`` / ``.pdf``: re-rendered from the recomputed curve data and metrics and
  compared byte for byte (they are written without timestamps, so the same matplotlib gives the
  same bytes; under another matplotlib version they are named as not compared, not passed);
- ``reporting/characteristics.*`` (Table 1): from the archived sample sheet and splits;
- ``reporting/model_card.*``: from the recomputed metrics, sheet, splits, qc.tsv and provenance.json.

Every other file (qc/qc.tsv needs the images; methods.md, the checklists, failures and flow) is
named as not recomputed: the manifest and provenance.json are all that check it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from oncoflow.baseline import baseline_models
from oncoflow.run_facts import report_facts

#: Columns evaluate_study adds to the fold predictions (dropped before recomputing them; site and
#: cohort only when the splits table has them).
DERIVED_COLUMNS = ("threshold", "risk", "prediction_set", "repeat", "site", "cohort")
_MAX_CELLS = 10  # differing cells named per file


@dataclass
class Recomputation:
    compared: list[str] = field(default_factory=list)  # archive names recomputed and compared
    problems: list[str] = field(default_factory=list)
    not_recomputed: list[str] = field(default_factory=list)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _folds_per_repeat(splits: pd.DataFrame) -> int:
    folds = splits.loc[splits["role"] == "test", "fold"].astype(int)
    repeats = splits["repeat"].nunique() if "repeat" in splits.columns else 1
    return folds.nunique() // max(repeats, 1)


def _evaluate(root: Path, out: Path, config: dict[str, Any]) -> None:
    from oncoflow.metrics.choices import evaluate_params
    from oncoflow.metrics.curves import write_curves
    from oncoflow.metrics.evaluate import compare_study, evaluate_study

    archived = pd.read_csv(root / "tables" / "predictions.tsv", sep="\t", dtype={"subject": str})
    splits = pd.read_csv(root / "folds" / "splits.tsv", sep="\t", dtype={"subject": str, "site": str},
                         keep_default_na=False)
    added = [c for c in DERIVED_COLUMNS if c in archived.columns and (c not in ("site", "cohort") or c in splits)]
    raw = archived.drop(columns=added)
    ev = config["evaluate"]
    evaluate_study(raw, out / "tables", seed=config["cv"]["seed"], folds=_folds_per_repeat(splits), splits=splits,
                   prediction_sets=ev.get("prediction_sets"), **evaluate_params(config))
    pooled = pd.read_csv(out / "tables" / "predictions.tsv", sep="\t")
    compare_study(pooled, out / "tables", comparisons=[list(p) for p in ev["comparisons"]],
                  correction=ev["correction"], level=ev["ci_level"])
    write_curves(pooled, out / "figures", dca_range=ev["dca_range"], dca_step=ev["dca_step"],
                 calibration_bins=ev["calibration_bins"], calibration_strategy=ev["calibration_strategy"],
                 level=ev["ci_level"], n_boot=ev["n_boot"], seed=config["cv"]["seed"])


def _figures(root: Path, out: Path, config: dict[str, Any]) -> None:
    from oncoflow.report.figures import plot_study

    plot_study(out / "figures", out / "tables" / "metrics.tsv", out / "figures")


def _reporting(root: Path, out: Path, config: dict[str, Any]) -> None:
    from oncoflow.report.model_card import write_model_card
    from oncoflow.report.reporting import write_characteristics
    from oncoflow.report.targets import sheet_settings

    sheets = sorted((root / "samples").glob("*.tsv"))
    if len(sheets) != 1:
        raise ValueError(f"{len(sheets)} sample sheets under samples/ (expected one)")
    settings = sheet_settings(config)
    settings["cohort"] = {**settings["cohort"], "samples": str(sheets[0])}
    (out / "reporting").mkdir(parents=True, exist_ok=True)
    splits = str(root / "folds" / "splits.tsv")
    write_characteristics(settings, splits=splits, tsv=str(out / "reporting" / "characteristics.tsv"),
                          md=str(out / "reporting" / "characteristics.md"))
    if (root / "qc" / "qc.tsv").is_file():
        page = Path(__file__).resolve().parents[3] / "docs" / "studies" / f"{config['study']['name']}.md"
        sheet = pd.read_csv(sheets[0], sep="\t", dtype=str, keep_default_na=False)
        facts = report_facts(config, baseline_models(config, sheet))
        selection = root / "tables" / "selection.tsv"
        sets = out / "tables" / "prediction_sets.tsv"
        explanations = root / "tables" / "explanation_sanity.tsv"  # archived as written: maps are not recomputed
        write_model_card(facts, metrics=str(out / "tables" / "metrics.tsv"), samples=str(sheets[0]), splits=splits,
                         qc=str(root / "qc" / "qc.tsv"), provenance=str(root / "provenance.json"),
                         study_page=str(page) if page.is_file() else None,
                         md=str(out / "reporting" / "model_card.md"), json_out=str(out / "reporting" / "model_card.json"),
                         html=str(out / "reporting" / "model_card.html"),
                         selection=str(selection) if selection.is_file() else None,
                         prediction_sets=str(sets) if sets.is_file() else None,
                         explanations=str(explanations) if explanations.is_file() else None)


#: (what, function writing under the recompute folder): run in order, each after the one it reads.
STEPS: tuple[tuple[str, Callable[[Path, Path, dict[str, Any]], None]], ...] = (
    ("tables and curve data from tables/predictions.tsv and folds/splits.tsv", _evaluate),
    ("figures from the recomputed curve data", _figures),
    ("Table 1 and the model card from samples/, folds/splits.tsv, qc/qc.tsv and provenance.json", _reporting),
)


def _cells(kind: str, text: str) -> list[list[str]]:
    from oncoflow.report.table_check import _latex_rows, _markdown_rows

    return (_latex_rows if kind == ".tex" else _markdown_rows)(text)


def compare_file(name: str, archived: Path, recomputed: Path) -> list[str]:
    """How the archived file differs from its recomputation: the cells (row, column and both
    values) of a .tsv, .md or .tex table, the first differing line of other text, or the bytes."""
    a, b = archived.read_bytes(), recomputed.read_bytes()
    if a == b:
        return []
    suffix = archived.suffix
    if suffix == ".tsv":
        try:
            x, y = _read(archived), _read(recomputed)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            return [f"{name}: not a readable table ({exc})"]
        header = list(y.columns)
        rows_a, rows_b = [list(x.columns), *x.values.tolist()], [header, *y.values.tolist()]
    elif suffix in (".md", ".tex"):
        rows_a, rows_b = _cells(suffix, a.decode("utf-8", "replace")), _cells(suffix, b.decode("utf-8", "replace"))
        header = rows_b[0] if rows_b else []
    else:
        rows_a = rows_b = []
        header = []
    problems = []
    if rows_b:
        if len(rows_a) != len(rows_b) or (rows_a and rows_a[0] != rows_b[0]):
            problems.append(f"{name}: {max(len(rows_a) - 1, 0)} rows with columns {rows_a[0] if rows_a else []}, "
                            f"recomputed {len(rows_b) - 1} rows with columns {rows_b[0]}")
        else:
            for i, (ra, rb) in enumerate(zip(rows_a[1:], rows_b[1:]), 1):
                for j, (ca, cb) in enumerate(zip(ra, rb)):
                    if ca != cb:
                        column = header[j] if j < len(header) else f"#{j + 1}"
                        key = f" ({rb[0]}, {rb[2]})" if suffix == ".tsv" and len(rb) > 2 else f" ({rb[0]})" if rb else ""
                        problems.append(f"{name}: row {i}{key}, column {column!r}: archived {ca!r}, recomputed {cb!r}")
    if not problems and suffix in (".tsv", ".md", ".tex", ".json", ".html"):
        lines_a, lines_b = a.decode("utf-8", "replace").splitlines(), b.decode("utf-8", "replace").splitlines()
        k = next((k for k, (la, lb) in enumerate(zip(lines_a, lines_b)) if la != lb), min(len(lines_a), len(lines_b)))
        shown_a = lines_a[k] if k < len(lines_a) else "(end of file)"
        shown_b = lines_b[k] if k < len(lines_b) else "(end of file)"
        col = next((c for c, (x, y) in enumerate(zip(shown_a, shown_b)) if x != y), min(len(shown_a), len(shown_b)))
        start = max(col - 40, 0)  # the first difference, with some context
        problems.append(f"{name}: line {k + 1}, column {col + 1}: archived {shown_a[start:start + 120]!r}, "
                        f"recomputed {shown_b[start:start + 120]!r}")
    if not problems:
        problems.append(f"{name}: differs from its re-rendering from the recomputed data ({len(a)} vs {len(b)} bytes)")
    if len(problems) > _MAX_CELLS:
        problems = [*problems[:_MAX_CELLS], f"{name}: and {len(problems) - _MAX_CELLS} more differing cells"]
    return problems


def _matplotlib_versions(root: Path) -> tuple[str | None, str | None]:
    """(the archive's, this environment's) matplotlib versions."""
    import matplotlib

    try:
        recorded = json.loads((root / "provenance.json").read_text()).get("software", {}).get("matplotlib")
    except (OSError, ValueError, AttributeError):
        recorded = None
    return recorded, matplotlib.__version__


def recompute_archive(root: Path) -> Recomputation:
    """Recompute what :data:`STEPS` can from the restored archive ``root`` and compare it."""
    result = Recomputation()
    config_path = root / "config" / "resolved.json"
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    if not config_path.is_file() or not (root / "tables" / "predictions.tsv").is_file():
        # not an archive of a whole run (provenance.json's inputs catch predictions deleted from one)
        result.not_recomputed = sorted(present - {"MANIFEST.sha256"})
        result.not_recomputed.append("(nothing recomputed: no config/resolved.json and tables/predictions.tsv)")
        return result
    config = json.loads(config_path.read_text())
    recorded, here = _matplotlib_versions(root)
    with tempfile.TemporaryDirectory(prefix="oncoflow-recompute-") as holder:
        out = Path(holder)
        for what, step in STEPS:
            try:
                step(root, out, config)
            except Exception as exc:  # noqa: BLE001 - a tampered input may break any step: say which
                result.problems.append(f"cannot recompute the {what}: {type(exc).__name__}: {exc}")
        made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
        for name in made:
            if name not in present:
                if name.startswith(("tables/", "figures/")) or name in present_folders(present, name):
                    result.problems.append(f"missing: {name} (recomputed from the archived predictions, but absent)")
                continue
            if name.endswith((".png", ".pdf")) and recorded and recorded != here:
                result.not_recomputed.append(f"{name} (made with matplotlib {recorded}, here {here}: not compared)")
                continue
            result.compared.append(name)
            result.problems.extend(compare_file(name, root / name, out / name))
    skipped = {"MANIFEST.sha256", "provenance.json", "folds/splits.tsv", "pyproject.toml"}
    unchecked = sorted(n for n in present - set(result.compared) - skipped
                       if not n.startswith(("config/", "samples/", "envs/"))
                       and not any(n == s.split(" ")[0] for s in result.not_recomputed))
    maps = [n for n in unchecked if n.startswith("explain/")]  # one line for the maps, not one per file
    result.not_recomputed += [n for n in unchecked if n not in maps] + (
        [f"explain/ ({len(maps)} files: explanation maps and their per-patient tables)"] if maps else [])
    return result


def present_folders(present: set[str], name: str) -> set[str]:
    """``name`` when the archive holds other files of its folder (then it should hold this one too)."""
    folder = name.rsplit("/", 1)[0]
    return {name} if any(p.startswith(f"{folder}/") for p in present) else set()
