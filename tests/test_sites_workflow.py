"""Leave-one-site-out through the real workflow (issue #16): the finished tiny demo run, its 12
internal patients spread over three sites, rerun with cohort.site and cv.scheme
leave_one_site_out. Only folds, models and tables rerun (the preprocessed images are reused)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from workflow_helpers import planned_jobs, run_snakemake, tiny_config, write_config


def test_leave_one_site_out_run_reports_every_site(finished_run: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    sheet_path = workdir / "data/demo/samples.tsv"
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    internal = sheet.index[sheet["cohort"] == "train"]
    # deal the internal patients, sorted by label, over sites A, B, C: both classes at each
    order = sheet.loc[internal].sort_values(["label", "subject"]).index
    sheet.loc[order, "site"] = [("A", "B", "C")[k % 3] for k in range(len(order))]
    sheet.to_csv(sheet_path, sep="\t", index=False)
    config = tiny_config()
    config["cohort"]["site"] = "site"
    config["cv"].update(scheme="leave_one_site_out", min_site_size=2)
    config["models"][0]["inputs"] = ["t1ce"]
    config["fusion"].update(methods=[], models=[])
    write_config(workdir, config)
    result = run_snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-5000:]
    jobs = planned_jobs(result.stderr)  # the run's job table (Snakemake writes it to stderr)
    assert jobs.get("train_model") == 3 and "crop_tumor" not in jobs  # the front half was reused

    r = workdir / "results/demo"
    splits = pd.read_csv(r / "folds/splits.tsv", sep="\t", dtype={"site": str})
    test = splits[splits["role"] == "test"]
    assert [sorted(set(test.loc[test["fold"] == k, "site"])) for k in range(3)] == [["A"], ["B"], ["C"]]
    assert test["subject"].is_unique and len(test) == len(internal)
    assert set(splits.loc[splits["role"] == "external", "site"]) == {"SRMC"}
    preds = pd.read_csv(r / "tables/predictions.tsv", sep="\t", dtype={"site": str})
    assert (preds["site"] == preds["subject"].map(sheet.set_index("subject")["site"])).all()
    by_site = pd.read_csv(r / "tables/metrics_by_site.tsv", sep="\t", dtype={"site": str})
    assert set(by_site["model"]) == {"t1ce_resnet18", "baseline"}
    for model, part in by_site.groupby("model"):
        cv = part[part["cohort"] == "cv"].set_index("site")
        assert sorted(cv.index) == ["A", "B", "C"] and cv["n"].sum() == len(internal), model
        assert (cv["n_pos"] > 0).all() and (cv["n_pos"] < cv["n"]).all()
        assert part.loc[part["cohort"] == "external", "site"].tolist() == ["SRMC"]
    assert "| site |" in (r / "tables/metrics_by_site.md").read_text()
    assert (r / "figures/sites.png").stat().st_size > 10_000 and (r / "figures/sites.pdf").is_file()
    methods = (r / "methods.md").read_text()
    assert "Validation was leave-one-site-out (sample-sheet column `site`)" in methods
    assert "the 3 tested sites were A (4 patients, 2 positive)" in methods
    assert "reported per site" in methods
