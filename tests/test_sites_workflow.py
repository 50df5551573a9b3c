"""Sites through the real workflow (issue #16): the finished tiny demo run, its 12 internal
patients spread over sites, rerun with cohort.site: under cv.scheme leave_one_site_out (folds,
models and tables rerun; the preprocessed images are reused), and with ComBat harmonisation of
the baseline (only the folds, the baseline fits and the tables rerun; the CNNs' predictions, made on
the same folds, are reused)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from workflow_helpers import planned_jobs, run_snakemake, tiny_config, write_config


def copy_with_sites(finished_run: Path, workdir: Path, sites: tuple[str, ...],
                    by_test_fold: bool = False) -> tuple[pd.DataFrame, pd.Index]:
    """The finished run copied to ``workdir``, its internal patients dealt over ``sites`` by label
    (both classes at each; ``by_test_fold``: by the run's test fold first, so that each site has
    patients in every test fold and every training fold); the sheet and its internal rows."""
    shutil.copytree(finished_run, workdir, symlinks=True)
    sheet_path = workdir / "data/demo/samples.tsv"
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    internal = sheet.index[sheet["cohort"] == "train"]
    splits = pd.read_csv(workdir / "results/demo/folds/splits.tsv", sep="\t", dtype={"subject": str})
    sheet["test_fold"] = sheet["subject"].map(splits[splits["role"] == "test"].set_index("subject")["fold"])
    order = sheet.loc[internal].sort_values([*(["test_fold"] if by_test_fold else []), "label", "subject"]).index
    sheet = sheet.drop(columns="test_fold")
    sheet.loc[order, "site"] = [sites[k % len(sites)] for k in range(len(order))]
    sheet.to_csv(sheet_path, sep="\t", index=False)
    return sheet, internal


def test_leave_one_site_out_run_reports_every_site(finished_run: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    sheet, internal = copy_with_sites(finished_run, workdir, ("A", "B", "C"))
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
    table = pd.read_csv(r / "reporting/characteristics.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert [c for c in table.columns if c.startswith("fold ")] == ["fold 0 test: site A (n=4)",
                                                                   "fold 1 test: site B (n=4)",
                                                                   "fold 2 test: site C (n=4)"]
    flow = pd.read_csv(r / "reporting/flow.tsv", sep="\t")
    assert flow.loc[flow["stage"] == "sites", "group"].tolist() == [
        "site 'A': tested (fold 0)", "site 'B': tested (fold 1)", "site 'C': tested (fold 2)", "site 'SRMC': external"]


def test_combat_runs_inside_the_baseline_fits(finished_run: Path, tmp_path: Path) -> None:
    """harmonisation.method combat through the rules: the baseline's fits change, only the folds,
    baseline fits and tables rerun, and a fold's fit does not move when its test patients'
    features change (ComBat and the standardisation saw its training patients only)."""
    workdir = tmp_path / "run"
    sheet, internal = copy_with_sites(finished_run, workdir, ("A", "B"), by_test_fold=True)
    r = workdir / "results/demo"
    before = {k: pd.read_csv(r / f"models/baseline/fold{k}/coefficients.tsv", sep="\t") for k in range(3)}
    splits_before = pd.read_csv(r / "folds/splits.tsv", sep="\t")
    preds_before = pd.read_csv(r / "tables/predictions.tsv", sep="\t")
    config = tiny_config()
    config["cohort"]["site"] = "site"
    config["harmonisation"] = {"method": "combat", "min_site_patients": 2}  # ~5 training patients a fold
    write_config(workdir, config)
    targets = [f"results/demo/{t}" for t in ("tables/metrics_by_site.tsv", "methods.md",
                                             "reporting/characteristics.tsv", "reporting/flow.tsv")]
    # The stratified folds do not move with a site column (checked below), so the CNNs' and
    # fusions' fold predictions stay valid: only the rules downstream of the folds that do not
    # train a CNN may run.
    rules = ["split_folds", "fit_baseline_model", "evaluate_models", "evaluate_sites", "compare_models",
             "write_provenance", "write_methods", "write_characteristics", "write_participant_flow"]
    result = run_snakemake(workdir, "--cores", "2", *targets, "--allowed-rules", *rules)
    assert result.returncode == 0, result.stderr[-5000:]
    assert planned_jobs(result.stderr) == {rule: 3 if rule == "fit_baseline_model" else 1 for rule in rules}
    splits = pd.read_csv(r / "folds/splits.tsv", sep="\t")
    assert splits.drop(columns="site").equals(splits_before) and set(splits["site"]) == {"A", "B", "SRMC"}
    trained = splits[splits["role"] == "train"].groupby(["fold", "site"]).size()
    assert trained.min() >= 2 and len(trained) == 6  # two sites of >= min_site_patients in every fit
    preds = pd.read_csv(r / "tables/predictions.tsv", sep="\t")
    key = ["model", "subject", "fold", "role"]
    merged = preds.merge(preds_before, on=key, suffixes=("", "_before"))
    assert len(merged) == len(preds) == len(preds_before)
    same = (merged["probability"] - merged["probability_before"]).abs() < 1e-9
    assert same[merged["model"] != "baseline"].all()  # ComBat touches the feature model only
    assert not same[merged["model"] == "baseline"].all()

    for k in range(3):
        after = pd.read_csv(r / f"models/baseline/fold{k}/coefficients.tsv", sep="\t")
        assert after["term"].tolist() == before[k]["term"].tolist()  # the same terms, harmonised values
        moved = (after[["train_mean", "train_sd"]] - before[k][["train_mean", "train_sd"]]).abs()
        assert moved.max().max() > 1e-3, k
        log = (r / f"logs/fit_baseline_model/fold{k}.log").read_text()
        assert "ComBat on" in log and "fitted on training sites A, B" in log
    methods = (r / "methods.md").read_text()
    assert "were removed with ComBat" in methods and "`site` column" in methods
    table = pd.read_csv(r / "reporting/characteristics.tsv", sep="\t", dtype=str, keep_default_na=False)
    site = table[table["variable"] == "site"].set_index("level")
    assert list(site.index) == ["= A", "= B", "= SRMC"] and site.at["= A", "test across folds"] == "none: random folds"
    assert site.at["= A", "test across cohorts"] == "none: no site in two groups"  # SRMC is external only
    flow = pd.read_csv(r / "reporting/flow.tsv", sep="\t").set_index("group")
    assert flow.at["site 'A': tested (folds 0, 1, 2)", "n"] + flow.at["site 'B': tested (folds 0, 1, 2)", "n"] == len(
        internal) and flow.at["site 'SRMC': external", "n"] == 2

    # Fold 0's test patients' features shifted: its fit (coefficients, harmonised training means
    # and sds) stays byte for byte; its test predictions move.
    splits = pd.read_csv(r / "folds/splits.tsv", sep="\t", dtype={"subject": str})
    test = splits.loc[(splits["fold"] == 0) & (splits["role"] == "test"), "subject"]
    features_path = r / "baseline/features.tsv"
    features = pd.read_csv(features_path, sep="\t", dtype={"subject": str})
    fold0 = r / "models/baseline/fold0"
    fitted, predicted = (fold0 / "coefficients.tsv").read_bytes(), pd.read_csv(fold0 / "predictions.tsv", sep="\t")
    shifted = features["subject"].isin(test)
    numeric = features.columns.drop("subject")
    features.loc[shifted, numeric] = features.loc[shifted, numeric] * 1.5 + 1.0
    features.to_csv(features_path, sep="\t", index=False)
    result = run_snakemake(workdir, "--cores", "1", str(fold0.relative_to(workdir) / "coefficients.tsv"))
    assert result.returncode == 0, result.stderr[-5000:]
    assert planned_jobs(result.stderr) == {"fit_baseline_model": 1}
    assert (fold0 / "coefficients.tsv").read_bytes() == fitted
    moved = pd.read_csv(fold0 / "predictions.tsv", sep="\t").set_index("subject")["probability"]
    assert not moved.loc[test].round(6).equals(predicted.set_index("subject")["probability"].loc[test].round(6))
