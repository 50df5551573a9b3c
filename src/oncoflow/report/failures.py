"""Failure analysis (CLAIM 2024 item 39): the misclassified patients of each model at its
threshold (each patient's own fold threshold for the pooled cross-validation, the mean of the fold
thresholds for the external ensemble; oncoflow.metrics.evaluate), with their QC flags and the path
of their QC montage, and, for a CNN's cross-validation test patient, the path of the explanation map
of the fold model that predicted them with that model fold's randomisation check (rule
tabulate_explanations), so that the author can look at each one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from oncoflow.metrics.evaluate import cohort_predictions
from oncoflow.report.explanations import METHOD_NAMES, method_check

FAILURE_COLUMNS = ["model", "cohort", "subject", "fold", "y_true", "probability", "threshold", "error", "qc_flag",
                   "qc_montage", "explanation_map", "map_check"]
NOT_A_CNN = "no map (not a CNN)"


@dataclass(frozen=True)
class MapIndex:
    """Where the explanation maps are: ``cnn`` the run's CNN models, ``sanity`` its
    tables/explanation_sanity.tsv (None: explain.activate is off), ``results`` the results folder
    the map paths are relative to (explain/<model>/fold<k>/maps/, rule explanation_maps)."""

    cnn: frozenset[str]
    sanity: pd.DataFrame | None
    results: Path

    def map_path(self, model: str, cohort: str, subject: str, fold: object) -> tuple[str, str]:
        """(the patient's map, relative to the results folder, or ""; the model fold's check, or why
        there is no map). The PNG overlay where the architecture has one, else its NIfTI maps."""
        if model not in self.cnn:
            return "", NOT_A_CNN
        if self.sanity is None:
            return "", "no map (explain.activate is off)"
        if cohort != "cv":
            return "", "no map (external: the fold models' mean; maps are made for each fold's test patients)"
        folder = f"explain/{model}/fold{fold}/maps"
        names = [f"{subject}.png"] if (self.results / folder / f"{subject}.png").is_file() else sorted(
            p.name for p in (self.results / folder).glob(f"{subject}_*.nii.gz"))
        if not names:
            raise FileNotFoundError(f"{model} fold {fold}: no explanation map of test patient {subject} in "
                                    f"{self.results / folder}")
        return " ".join(f"{folder}/{n}" for n in names), self.check(model, fold)

    def check(self, model: str, fold: object) -> str:
        """The model fold's randomisation check per method, as tables/explanation_sanity.tsv has it."""
        assert self.sanity is not None
        rows = self.sanity[(self.sanity["model"] == model) & (self.sanity["fold"].astype(str) == str(fold))]
        if rows.empty:
            raise KeyError(f"{model} fold {fold}: not in tables/explanation_sanity.tsv")
        return "; ".join(f"{METHOD_NAMES.get(r.method, r.method)}: {method_check(r)}" for r in rows.itertuples())


def test_folds(predictions: pd.DataFrame) -> dict[tuple[str, str], object]:
    """(model, subject) -> the fold whose test set held the subject (repeat 0, as cohort_predictions)."""
    test = predictions[predictions["role"] == "test"]
    if "repeat" in test.columns:
        test = test[test["repeat"] == 0]
    return {(m, s): f for m, s, f in zip(test["model"], test["subject"], test["fold"])}


def classified(predictions: pd.DataFrame, qc: pd.DataFrame, maps: MapIndex | None = None, *,
               wrong: bool = True) -> pd.DataFrame:
    """The misclassified (``wrong``) or the correctly classified patients of each model and cohort at
    its threshold; montage and map paths are relative to the results folder (qc/<subject>.png)."""
    flags = qc.set_index("subject")["flag"].fillna("").astype(str).to_dict()
    folds = test_folds(predictions)
    rows = []
    for model, cohort, frame in cohort_predictions(predictions):
        predicted = (frame["probability"] >= frame["threshold"]).astype(int)
        chosen = frame[(predicted != frame["y_true"].astype(int)) == wrong]
        for _, r in chosen.iterrows():
            fold = folds[(model, r["subject"])] if cohort == "cv" else ""
            path, check = maps.map_path(model, cohort, r["subject"], fold) if maps else ("", "")
            error = ("false positive" if int(r["y_true"]) == 0 else "false negative") if wrong else "correct"
            rows.append({"model": model, "cohort": cohort, "subject": r["subject"], "fold": fold,
                         "y_true": int(r["y_true"]), "probability": round(float(r["probability"]), 4),
                         "threshold": round(float(r["threshold"]), 4), "error": error,
                         "qc_flag": flags.get(r["subject"], ""), "qc_montage": f"qc/{r['subject']}.png",
                         "explanation_map": path, "map_check": check})
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def misclassified(predictions: pd.DataFrame, qc: pd.DataFrame, maps: MapIndex | None = None) -> pd.DataFrame:
    """failures.tsv from tables/predictions.tsv (with its thresholds), qc/qc.tsv and the maps."""
    return classified(predictions, qc, maps)


def distinct_probabilities(a: float, b: float, digits: int = 3, most: int = 6) -> tuple[str, str]:
    """``a`` and ``b`` with the fewest decimals (at least ``digits``) that keep different values
    different and a value strictly inside (0, 1) off 0 and 1 (0.9992 vs 0.9998: "0.9992", "0.9998",
    not "0.999" and "1.000")."""
    def edge(x: float, text: str) -> bool:
        return 0 < x < 1 and float(text) in (0.0, 1.0)

    for d in range(digits, most + 1):
        ta, tb = f"{a:.{d}f}", f"{b:.{d}f}"
        if (ta != tb or a == b) and not edge(a, ta) and not edge(b, tb):
            return ta, tb
    return f"{a:.{most}g}", f"{b:.{most}g}"


def _map_text(r: pd.Series, embed: bool = True) -> str:
    """The patient's maps (the PNG overlay as an image, or as a link where ``embed`` is false; NIfTI
    maps as links; paths relative to reporting/) after the model fold's check, or why there is no map."""
    paths = str(r.get("explanation_map", "") or "").split()
    check = str(r.get("map_check", "") or "")
    if not paths:
        return f"; {check}" if check else ""
    maps = " ".join(f"![{r['subject']}, {r['model']} fold {r['fold']}](../{p})" if p.endswith(".png") and embed
                    else f"[{Path(p).name}](../{p})" for p in paths)
    return f"; maps of the fold {r['fold']} model ({check}): {maps}"


def failures_markdown(failures: pd.DataFrame, metrics_n: dict[tuple[str, str], int],
                      correct: pd.DataFrame | None = None, shown: set[tuple[str, str]] | None = None) -> str:
    """failures.md: per model and cohort, how many of n were misclassified, then the patients;
    subjects misclassified by every model first (the cases to look at). ``correct``: the correctly
    classified patients with maps (:func:`classified`), listed after each model's failures for comparison.
    ``shown``: the (model, subject) cross-validation overlays the report embeds (oncoflow.report.overlays;
    None: every one); the others are linked."""
    lines = ["# Failure analysis", "",
             "Misclassified patients of each model at its threshold, with QC flags and montage links, and for "
             "a CNN's cross-validation test patients the explanation map of the fold model that predicted them "
             "(explain/<model>/fold<k>/maps/ in the results folder; category \"Explanation maps\" in the "
             "Snakemake report) with that model fold's randomisation check (tables/explanation_sanity.tsv).", ""]
    by_subject = failures.groupby(["cohort", "subject"])["model"].nunique()
    n_models = failures["model"].nunique() if len(failures) else 0
    always = sorted(s for (c, s), n in by_subject.items() if n_models and n == len({m for m, _ in metrics_n}))
    if always:
        lines += [f"Misclassified by every model: {', '.join(always)}", ""]
    for (model, cohort), n in metrics_n.items():
        part = failures[(failures["model"] == model) & (failures["cohort"] == cohort)]
        lines.append(f"## {model} ({cohort}): {len(part)} of {n} misclassified")
        lines.append("")
        for _, r in part.iterrows():
            flag = f"; QC: {r['qc_flag']}" if r["qc_flag"] else ""
            p, threshold = distinct_probabilities(float(r["probability"]), float(r["threshold"]))
            lines.append(f"- {r['subject']}: {r['error']} (p = {p}, threshold {threshold}{flag}) "
                         f"[montage](../{r['qc_montage']})"
                         f"{_map_text(r, shown is None or (model, r['subject']) in shown)}")
        lines += ["", *_correct_lines(correct, model, cohort)]
    return "\n".join(lines)


def _correct_lines(correct: pd.DataFrame | None, model: str, cohort: str) -> list[str]:
    """The model's correctly classified patients that have maps, for comparison (empty: none)."""
    if correct is None or correct.empty:
        return []
    part = correct[(correct["model"] == model) & (correct["cohort"] == cohort)
                   & (correct["explanation_map"].fillna("") != "")]
    if part.empty:
        return []
    links = ", ".join(f"{r['subject']} ([map](../{str(r['explanation_map']).split()[0]}), fold {r['fold']})"
                      for _, r in part.iterrows())
    return [f"Correctly classified, for comparison: {links}", ""]
