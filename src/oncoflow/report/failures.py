"""Failure analysis (CLAIM 2024 item 39): the misclassified patients of each model at its
threshold (each patient's own fold threshold for the pooled cross-validation, the mean of the fold
thresholds for the external ensemble; oncoflow.metrics.evaluate), with their QC flags and the path
of their QC montage, so that the author can look at each one."""

from __future__ import annotations

import pandas as pd

from oncoflow.metrics.evaluate import cohort_predictions

FAILURE_COLUMNS = ["model", "cohort", "subject", "y_true", "probability", "threshold", "error", "qc_flag", "qc_montage"]


def misclassified(predictions: pd.DataFrame, qc: pd.DataFrame) -> pd.DataFrame:
    """failures.tsv from tables/predictions.tsv (with its thresholds) and qc/qc.tsv; montage
    paths are relative to the results folder (qc/<subject>.png)."""
    flags = qc.set_index("subject")["flag"].fillna("").astype(str).to_dict()
    rows = []
    for model, cohort, frame in cohort_predictions(predictions):
        predicted = (frame["probability"] >= frame["threshold"]).astype(int)
        wrong = frame[predicted != frame["y_true"].astype(int)]
        for _, r in wrong.iterrows():
            rows.append({"model": model, "cohort": cohort, "subject": r["subject"], "y_true": int(r["y_true"]),
                         "probability": round(float(r["probability"]), 4), "threshold": round(float(r["threshold"]), 4),
                         "error": "false positive" if int(r["y_true"]) == 0 else "false negative",
                         "qc_flag": flags.get(r["subject"], ""), "qc_montage": f"qc/{r['subject']}.png"})
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


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


def failures_markdown(failures: pd.DataFrame, metrics_n: dict[tuple[str, str], int]) -> str:
    """failures.md: per model and cohort, how many of n were misclassified, then the patients;
    subjects misclassified by every model first (the cases to look at)."""
    lines = ["# Failure analysis", "",
             "Misclassified patients of each model at its threshold, with QC flags and montage links.", ""]
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
                         f"[montage](../{r['qc_montage']})")
        lines.append("")
    return "\n".join(lines)
