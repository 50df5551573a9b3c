"""tables/explanation_sanity.tsv in the reports: the sentence methods.md and the model card write
from it (what the maps are, how the randomisation check came out, how much of the maps' mass fell in
the tumor), and the caveat when a model's maps did not depend on its weights."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

METHOD_NAMES = {"gradcam": "Grad-CAM", "occlusion": "occlusion sensitivity"}


def read_explanations(path: str | Path | Iterable[str] | None) -> pd.DataFrame | None:
    """The table, or None when the run has none (a rule's optional input: an empty list)."""
    if path is not None and not isinstance(path, (str, Path)):
        path = next(iter(path), None)
    return pd.read_csv(path, sep="\t") if path else None


def layers_used(part: pd.DataFrame) -> str:
    """Grad-CAM's layers in ``part`` (rows of the table), with how many model folds used each when
    they differ; empty for occlusion and for a table written before the column existed."""
    if "layer" not in part:
        return ""
    counts = part["layer"].dropna().astype(str).loc[lambda s: s != ""].value_counts(sort=False)
    if len(counts) <= 1:
        return "".join(counts.index)
    return ", ".join(f"{layer} in {n} model folds" for layer, n in counts.items())


def _method_figures(part: pd.DataFrame) -> str:
    rho = part["random_spearman"].median()
    flat = int(part["patients_flat_map"].sum())
    flat_text = f"; {flat} of {int(part['n_patients'].sum())} patients' maps flat (no mass or no variation)" if flat else ""
    rho_text = f"median trained-vs-random Spearman rho {rho:.2f}" if pd.notna(rho) else "no rank correlation (flat maps)"
    return (f"{rho_text} over {len(part)} model folds; median map mass in the tumor "
            f"{part['tumor_share'].median():.0%} against a tumor area share of "
            f"{part['tumor_area_share'].median():.0%}{flat_text}")


def explanation_text(table: pd.DataFrame | None, settings: Mapping[str, object], planned: bool) -> str:
    """What the run's maps are (``planned``: the run makes them: CNN models and explain.activate) and,
    with its table, what their check found; empty when the run makes none."""
    if not planned:
        return ""
    names = ", ".join(METHOD_NAMES.get(str(m), str(m)) for m in settings["methods"])  # type: ignore[union-attr]
    text = (f"Explanation maps ({names}; monai.visualize) of every CNN fold model for that fold's test patients were checked "
            "by model-parameter randomisation (the same maps from the architecture with randomly initialised weights, "
            "drawn with the fold's training seed; a map that does not change shows the input, not the model), "
            f"flagged at a median Spearman rank correlation of {float(settings['max_random_spearman']):.2f} or more "
            "(tables/explanation_sanity.tsv).")
    if table is None or table.empty:
        return text
    per_method = "; ".join(f"{METHOD_NAMES.get(m, m)}{f' on {layers}' if (layers := layers_used(part)) else ''}: "
                           f"{_method_figures(part)}" for m, part in table.groupby("method", sort=False))
    return f"{text} {per_method}. {check_summary(table, settings)}"


def check_summary(table: pd.DataFrame, settings: Mapping[str, object]) -> str:
    """How many checks (model fold and method) were made and flagged; a check whose maps were all
    flat is counted as not made, never as passed."""
    made = int(table["random_spearman"].notna().sum())
    flat = len(table) - made
    unmade = f" {flat} of {len(table)} checks (model fold and method) were not made: every map was flat." if flat else ""
    if not made:
        return f"No check could be made: every map of the {len(table)} model folds and methods was flat."
    return (flagged_text(table, settings) or f"None of the {made} checks made was flagged.") + unmade


def flagged_text(table: pd.DataFrame | None, settings: Mapping[str, object]) -> str:
    """The caveat naming the model folds whose maps did not depend on the weights (empty if none)."""
    if table is None or table.empty:
        return ""
    flagged = table[table["weights_independent"].astype(str).str.lower() == "true"]
    if flagged.empty:
        return ""
    names = ", ".join(f"{r.model} fold {r.fold} ({METHOD_NAMES.get(r.method, r.method)}, rho {r.random_spearman:.2f})"
                      for r in flagged.itertuples())
    return (f"Maps that do not depend on the model's weights (median trained-vs-random Spearman rho >= "
            f"{float(settings['max_random_spearman']):.2f}; Adebayo et al. 2018): {names}; they should not be "
            "read as where that model looked.")


def method_check(r: object) -> str:
    """One row of tables/explanation_sanity.tsv as a verdict: flagged, not flagged, or not checked (flat maps)."""
    flat, n = int(r.patients_flat_map), int(r.n_patients)  # type: ignore[attr-defined]
    rho = float(r.random_spearman)  # type: ignore[attr-defined]
    if str(r.weights_independent).lower() == "true":  # type: ignore[attr-defined]
        return f"FLAGGED, maps do not depend on the weights (rho {rho:.2f})"
    if pd.isna(rho):
        return f"not checked, flat maps ({flat} of {n} patients)"
    return f"not flagged (rho {rho:.2f}" + (f"; {flat} of {n} flat)" if flat else ")")


def sanity_page(table: pd.DataFrame, settings: Mapping[str, object]) -> str:
    """tables/explanation_sanity.html for the report: what the check is, then one row per model,
    fold and method with its verdict (the TSV beside it has every column)."""
    import html

    from oncoflow.metrics.tables import to_html
    from oncoflow.report.markdown import html_page

    view = pd.DataFrame({
        "model": table["model"], "fold": table["fold"],
        "method": [METHOD_NAMES.get(m, m) for m in table["method"]],
        "layer": table["layer"].fillna("") if "layer" in table else "", "patients": table["n_patients"],
        "map mass in tumor": table["tumor_share"].map("{:.0%}".format),
        "tumor share of the crop": table["tumor_area_share"].map("{:.0%}".format),
        "flat maps": table["patients_flat_map"],
        "trained vs random rho": table["random_spearman"].map(lambda x: "" if pd.isna(x) else f"{x:.2f}"),
        "check": [method_check(r) for r in table.itertuples()]})
    intro = html.escape(explanation_text(table, settings, True))
    return html_page("Explanation maps: sanity check", "<h1>Explanation maps: sanity check</h1>\n"
                     f"<p>{intro}</p>\n<p>Every column: explanation_sanity.tsv; each test patient's maps: "
                     "explain/&lt;model&gt;/fold&lt;k&gt;/maps/ (this category shows each model's overlays of the "
                     "patients it misclassified and a few it classified correctly).</p>\n"
                     + to_html(view, na_rep=""))


def model_checks(table: pd.DataFrame | None) -> list[dict[str, object]] | None:
    """Per model and method, over its fold models: how many were flagged (maps that do not depend on
    the weights) or not checked (every map flat), the median trained-vs-random rho of those checked,
    the median map mass in the tumor against the tumor's share of the crop, and Grad-CAM's layer;
    None without a table."""
    if table is None:
        return None
    rows = []
    for (model, method), part in table.groupby(["model", "method"], sort=False):
        rho = part["random_spearman"]
        rows.append({"model": model, "method": METHOD_NAMES.get(method, method), "folds": len(part),
                     "flagged": int((part["weights_independent"].astype(str).str.lower() == "true").sum()),
                     "not_checked": int(rho.isna().sum()),
                     "random_spearman": float(rho.median()) if rho.notna().any() else None,
                     "tumor_share": float(part["tumor_share"].median()),
                     "tumor_area_share": float(part["tumor_area_share"].median()),
                     "flat_maps": f"{int(part['patients_flat_map'].sum())} of {int(part['n_patients'].sum())}",
                     "layer": layers_used(part)})
    return rows


def model_check_text(row: Mapping[str, object]) -> str:
    """One row of :func:`model_checks` (a model and method over its fold models) as the study's verdict."""
    folds, flagged, unchecked = int(row["folds"]), int(row["flagged"]), int(row["not_checked"])  # type: ignore[call-overload]
    rho = row.get("random_spearman")
    rho_text = f"median trained-vs-random rho {float(rho):.2f}" if rho is not None else "no rank correlation"  # type: ignore[arg-type]
    if unchecked == folds:
        return f"not checked in the study: every fold model's maps flat ({folds} fold models)"
    verdict = (f"FLAGGED in {flagged} of {folds} fold models: maps that do not depend on the weights" if flagged
               else f"not flagged in {folds - unchecked} of {folds} fold models")
    return f"{verdict} ({rho_text})" + (f"; {unchecked} not checked (flat maps)" if unchecked else "")
