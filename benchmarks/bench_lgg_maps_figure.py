"""Figure and sanity table of a finished run's explanation maps (issue #25, LGG): per fold, the
median map mass in the tumor against the tumor's area share and the trained-vs-random rank
correlation (oncoflow.explain.sanity.summarise, as tables/explanation_sanity.tsv); and one figure
with the maps of the most confident correct and wrong patients of each class (the rule's own
PNG overlays side by side).

    .venv/bin/python benchmarks/bench_lgg_maps_figure.py results/lgg_radiogenomics --model flair+t1+t1ce_resnet18 \
        --out benchmarks/figures/lgg_explanation_maps.png

Correct / wrong: the fold's test patient is predicted positive when its probability reaches the
fold's threshold (tables/predictions.tsv). Prints Markdown.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from oncoflow.explain.sanity import summarise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-random-spearman", type=float, default=0.5)
    args = parser.parse_args()
    explain = args.results / "explain" / args.model
    patients = pd.concat([pd.read_csv(p, sep="\t") for p in sorted(explain.glob("fold*/patients.tsv"))])
    folds = sorted(patients["fold"].unique())
    table = summarise(patients, args.max_random_spearman)
    print("| fold | method | layer | patients | tumor share (median) | tumor area share | enrichment | "
          "patients above area share | trained-vs-random rho | flagged | s / patient |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(f"| {r.fold} | {r.method} | {r.layer or '-'} | {r.n_patients} | {r.tumor_share:.1%} | {r.tumor_area_share:.1%} | "
              f"{r.tumor_enrichment:.2f} | {r.patients_tumor_above_area} | {r.random_spearman:.2f} | "
              f"{'yes' if r.weights_independent else 'no'} | {r.seconds_per_patient:.1f} |")
    preds = pd.read_csv(args.results / "tables" / "predictions.tsv", sep="\t")
    test = preds[(preds["model"] == args.model) & (preds["role"] == "test") & preds["fold"].isin(folds)].copy()
    test["predicted"] = (test["probability"] >= test["threshold"]).astype(int)
    test["margin"] = (test["probability"] - test["threshold"]).abs()
    picks = []
    for truth in (1, 0):
        for correct in (True, False):
            part = test[(test["y_true"] == truth) & ((test["predicted"] == truth) == correct)]
            if len(part):
                r = part.sort_values("margin", ascending=False).iloc[0]
                kind = {(1, True): "true positive", (0, True): "true negative", (1, False): "false negative",
                        (0, False): "false positive"}[(truth, correct)]
                picks.append((kind, r))
    print(f"\n{len(test)} test patients of folds {folds}: {int((test['predicted'] == test['y_true']).sum())} correct")
    fig, axes = plt.subplots(2, 2, figsize=(16, 10))
    for ax, (kind, r) in zip(axes.flat, picks):
        ax.imshow(plt.imread(explain / f"fold{r['fold']}" / "maps" / f"{r['subject']}.png"))
        ax.set_title(f"{kind}: probability {r['probability']:.2f}, threshold {r['threshold']:.2f}", fontsize=11)
        ax.axis("off")
        print(f"- {kind}: {r['subject']} (fold {r['fold']}), probability {r['probability']:.3f}, threshold {r['threshold']:.3f}")
    for ax in list(axes.flat)[len(picks):]:
        ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=60)


if __name__ == "__main__":
    main()
