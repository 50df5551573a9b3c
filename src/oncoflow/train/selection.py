"""How an epoch is chosen from validation scores (oncoflow.train.loop), without torch: the
criteria, the validation loss and the small-validation-set warning (also read by the reports)."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Epoch-selection criteria and protocols (config train.select_on, train.selection).
SELECT_ON = ("val_loss", "val_auc")
SELECTIONS = ("inner_val", "nested")
#: train.nested_model: what scores a fold's test patients after nested selection (oncoflow.train.loop);
#: the first is the default
NESTED_MODELS = ("ensemble", "refit")
#: How methods text names each (a table made before train.nested_model existed: refit)
NESTED_MODEL_TEXT = {"ensemble": "the fold's inner models at that epoch, their logits averaged, scored its test patients",
                     "refit": "then one model refitted on all of them for that many epochs"}


def nested_model(train: dict[str, Any]) -> str:
    """The config's train.nested_model (its default where the section leaves it out)."""
    return str(train.get("nested_model", NESTED_MODELS[0]))
#: Fewer validation patients of the smaller class than this: the selection is flagged as unreliable
#: (a rule of thumb borrowed from the ~10 events per estimated parameter of Peduzzi et al. 1996).
SELECTABLE_MINORITY = 10


def validation_loss(y: np.ndarray, p: np.ndarray, balanced: bool) -> float:
    """Patient-level binary cross-entropy; ``balanced``: the mean of the two classes' means (the
    objective of a class-weighted or class-balanced training)."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    if y.size == 0:
        return float("nan")
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    if balanced and 0 < y.sum() < y.size:
        return float(0.5 * (bce[y == 1].mean() + bce[y == 0].mean()))
    return float(bce.mean())


def better(row: dict[str, Any], best: dict[str, Any] | None, select_on: str) -> bool:
    """Whether epoch ``row`` beats ``best`` by ``select_on`` (AUC ties: lower validation loss;
    an undefined AUC falls back to the loss)."""
    if best is None:
        return True
    if select_on == "val_auc" and np.isfinite(row["val_auc"]) and np.isfinite(best["val_auc"]):
        if row["val_auc"] != best["val_auc"]:
            return row["val_auc"] > best["val_auc"]
    return row["val_loss"] < best["val_loss"]


def selection_warning(y_val: np.ndarray, where: str) -> str:
    """A sentence when the validation patients are too few to choose an epoch reliably."""
    y_val = np.asarray(y_val)
    smaller = int(min((y_val == 1).sum(), (y_val == 0).sum()))
    if smaller >= SELECTABLE_MINORITY:
        return ""
    return (f"{where}: {y_val.size} validation patients, {smaller} of the smaller class (< "
            f"{SELECTABLE_MINORITY}): too few to choose an epoch reliably; the chosen epoch is close to "
            "noise (train.selection nested selects on all of a fold's training patients)")
