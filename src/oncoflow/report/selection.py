"""tables/selection.tsv: the epoch each CNN fold model kept, from its history.tsv, with the size of
the validation set that chose it; and the sentences methods.md, the checklists and the model card
write from it (the real epochs, not the configured maximum)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from oncoflow.train.selection import NESTED_MODEL_TEXT, SELECTABLE_MINORITY, nested_model

COLUMNS = ["model", "fold", "selection", "select_on", "epochs_max", "epochs_run", "chosen_epoch", "val_loss",
           "val_auc", "n_val", "n_val_smaller_class", "auc_saturated", "too_small", "nested_model"]
CRITERIA = {"val_loss": "the lowest validation loss (class-balanced patient-level cross-entropy)",
            "val_auc": "the highest validation AUC, ties broken by the lower validation loss"}


def selection_table(histories: Mapping[tuple[str, int], str | Path], splits: pd.DataFrame,
                    train: Mapping[str, object], epochs: Mapping[str, int]) -> pd.DataFrame:
    """One row per (model, fold): the kept epoch (1-based) and its validation scores.
    ``train``: the config's train section; ``epochs``: model -> configured maximum."""
    selection, select_on = str(train.get("selection", "inner_val")), str(train.get("select_on", "val_loss"))
    rows = []
    for (model, fold), path in histories.items():
        h = pd.read_csv(path, sep="\t")
        kept = h[h["selected"].astype(str).str.lower() == "true"]
        if len(kept) != 1:
            raise ValueError(f"{path}: {len(kept)} epochs marked selected (expected 1)")
        row = kept.iloc[0]
        f = splits[splits["fold"] == fold]
        chose = f[f["role"].isin(["train", "val"] if selection == "nested" else ["val"])]
        y = chose["label"].to_numpy()
        smaller = int(min((y == 1).sum(), (y == 0).sum()))
        rows.append({"model": model, "fold": int(fold), "selection": selection, "select_on": select_on,
                     "epochs_max": int(epochs[model]), "epochs_run": len(h), "chosen_epoch": int(row["epoch"]) + 1,
                     "val_loss": float(row["val_loss"]), "val_auc": float(row["val_auc"]), "n_val": len(y),
                     "n_val_smaller_class": smaller, "auc_saturated": bool(row["val_auc"] >= 1.0),
                     "too_small": smaller < SELECTABLE_MINORITY,
                     "nested_model": nested_model(dict(train)) if selection == "nested" else ""})
    return pd.DataFrame(rows, columns=COLUMNS)


def epochs_text(table: pd.DataFrame | None) -> str:
    """What was kept, per model over folds: "t1_resnet18: epochs 3, 5, 2 (of up to 10)"."""
    if table is None or table.empty:
        return ""
    parts = []
    for model, t in table.sort_values(["model", "fold"]).groupby("model", sort=False):
        parts.append(f"{model}: epochs {', '.join(str(e) for e in t['chosen_epoch'])} "
                     f"(of up to {int(t['epochs_max'].iloc[0])})")
    return "; ".join(parts)


def selection_text(table: pd.DataFrame | None) -> str:
    """The methods / model-card sentences: criterion, the epochs kept per fold, and whether the
    validation sets could choose."""
    if table is None or table.empty:
        return ""
    first = table.iloc[0]
    # a table from before train.nested_model: those runs refitted; inner_val rows leave it empty (NaN once read)
    scored = first.get("nested_model")
    scored = NESTED_MODEL_TEXT[scored if isinstance(scored, str) and scored else "refit"]
    where = (f"pooled inner out-of-fold predictions of all the fold's training patients (nested selection; {scored})"
             if first["selection"] == "nested" else "the fold's inner-validation patients")
    text = (f"The epoch kept was the one with {CRITERIA[first['select_on']]} on {where}. Epochs kept per fold: "
            f"{epochs_text(table)}.")
    return f"{text} {reliability_text(table)}".strip()


def reliability_text(table: pd.DataFrame) -> str:
    """A warning when the validation sets were too small to choose, or the AUC saturated."""
    n = len(table)
    small, saturated = int(table["too_small"].sum()), int(table["auc_saturated"].sum())
    out = []
    if small:
        smallest = int(table["n_val_smaller_class"].min())
        out.append(f"In {small} of {n} fold models the patients that chose the epoch held fewer than "
                   f"{SELECTABLE_MINORITY} of the smaller class (as few as {smallest}): too few to choose an "
                   "epoch reliably, so the chosen epochs are close to noise.")
    if saturated:
        out.append(f"The validation AUC was 1.000 at the kept epoch in {saturated} of {n} fold models "
                   "(saturated: it could not tell epochs apart).")
    return " ".join(out)


def read_selection(path: str | Path | Iterable[str] | None) -> pd.DataFrame | None:
    """tables/selection.tsv, or None for a run without CNNs. ``path`` may be a rule's named input
    (a list of none or one path)."""
    if path is not None and not isinstance(path, (str, Path)):
        path = next(iter(path), None)
    if not path or not Path(path).exists():
        return None
    return pd.read_csv(path, sep="\t")

