"""The reporting folder (oncoflow.report.{flow,characteristics,failures,checklists}): participant
flow with exclusion reasons from the run's records, Table 1 by partition with its tests, the
misclassified patients at each model's threshold, and checklists whose numbering matches the
published lists."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from workflow_helpers import report_facts_for, tiny_config

from oncoflow.report.characteristics import BY_DESIGN, RANDOM, characteristics_table
from oncoflow.report.checklist_items import CHECKLISTS, VERIFIED
from oncoflow.report.checklists import AUTHOR, FILLED, NA, RunFacts, fill_checklist
from oncoflow.report.failures import misclassified
from oncoflow.report.flow import participant_flow, plot_flow
from oncoflow.report.reporting import ingested_subjects

# The published numbering, checked where VERIFIED says (CLAIM 2024: items 1-44, no sub-items;
# TRIPOD+AI 2024: 27 items, several split into sub-items a-g).
CLAIM_2024_NUMBERS = [str(i) for i in range(1, 45)]
TRIPOD_AI_NUMBERS = ["1", "2", "3a", "3b", "3c", "4", "5a", "5b", "6a", "6b", "6c", "7", "8a", "8b", "8c", "9a", "9b",
                     "9c", "10", "11", "12a", "12b", "12c", "12d", "12e", "12f", "12g", "13", "14", "15", "16", "17",
                     "18a", "18b", "18c", "18d", "18e", "18f", "19", "20a", "20b", "20c", "21", "22", "23a", "23b",
                     "24", "25", "26", "27a", "27b", "27c"]
CLEAR_NUMBERS = [str(i) for i in range(1, 59)]


def cohort() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """8 internal patients in 2 folds, 2 external; s3 is QC-flagged; the model never scored s8."""
    subjects = [f"s{i}" for i in range(1, 11)]
    samples = pd.DataFrame({"subject": subjects, "cohort": ["train"] * 8 + ["ext"] * 2,
                            "y": [1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
                            "age": ["50", "61", "47", "70", "55", "66", "58", "72", "49", "80"],
                            "sex": list("MFMFMFFMFM")})
    qc = pd.DataFrame({"subject": subjects, "flag": ["", "", "t1ce: constant inside the brain"] + [""] * 7})
    rows = []
    for fold in (0, 1):
        for i, s in enumerate(subjects[:8]):
            rows.append({"subject": s, "fold": fold, "role": "test" if i % 2 == fold else "train",
                         "label": samples.at[i, "y"]})
        rows += [{"subject": s, "fold": fold, "role": "external", "label": samples.at[8 + k, "y"]}
                 for k, s in enumerate(subjects[8:])]
    splits = pd.DataFrame(rows)
    preds = splits[splits["subject"] != "s8"].rename(columns={"label": "y_true"}).assign(model="m", threshold=0.5)
    preds["probability"] = [0.9 if y else 0.1 for y in preds["y_true"]]
    preds.loc[(preds["subject"] == "s2") & (preds["role"] == "test"), "probability"] = 0.7  # a false positive
    preds.loc[preds["subject"] == "s9", "probability"] = [0.45, 0.5]  # external mean 0.475 < mean threshold
    preds.loc[(preds["subject"] == "s9"), "threshold"] = [0.4, 0.5]  # mean threshold 0.45 -> called positive
    return samples, qc, splits, preds


def test_flow_names_every_exclusion_from_the_records(tmp_path: Path) -> None:
    samples, qc, splits, preds = cohort()
    flow = participant_flow(samples, qc, splits, preds, ingested=[f"s{i}" for i in range(1, 10)],
                            external_cohorts=["ext"])
    row = flow.set_index(["stage", "group"])
    assert row.loc[("listed", "sample sheet"), "n"] == 10 and row.loc[("listed", "sample sheet"), "n_positive"] == 5
    assert row.loc[("ingested", "images converted"), "excluded"] == "s10"
    assert row.loc[("quality control", "flagged (kept): s3"), "reason"] == "t1ce: constant inside the brain"
    assert row.loc[("folds", "fold 0 test"), "n"] == 4
    assert row.loc[("evaluated", "m (cv)"), "n"] == 7 and row.loc[("evaluated", "m (cv)"), "excluded"] == "s8"
    assert "predictions.tsv" in row.loc[("evaluated", "m (cv)"), "reason"]
    plot_flow(flow, tmp_path / "flow.png")
    assert (tmp_path / "flow.png").stat().st_size > 10_000
    (tmp_path / "s1.nii.gz").write_bytes(b"x")
    assert ingested_subjects(["s1", "s2"], [str(tmp_path / "s1.nii.gz"), str(tmp_path / "s2.nii.gz")]) == ["s1"]


def test_flow_names_the_patients_cropped_from_a_predicted_mask_only_when_there_are_any() -> None:
    samples, qc, splits, preds = cohort()
    samples["tumor_mask"] = ["m.nii.gz"] * 8 + ["", ""]  # the external patients have no manual mask
    args = {"ingested": list(samples["subject"]), "external_cohorts": ["ext"]}
    for mode in ("manual", "predicted"):
        flow = participant_flow(samples, qc, splits, preds, crop_mask=mode, **args)
        assert ("cropped" in set(flow["stage"])) == (mode == "predicted")
    flow = participant_flow(samples, qc, splits, preds, crop_mask="predicted_where_missing", **args)
    row = flow[flow["stage"] == "cropped"].iloc[0]
    assert row["n"] == 2 and row["reason"].startswith("2 of 10 patients (s9, s10) were cropped, and so scored")
    # a patient whose predicted mask was not cropped (s8: no prediction) is named with the crop's reason
    why = "not cropped: predicted tumor mask empty (segment/fold1/masks/s8.nii.gz)"
    flow = participant_flow(samples, qc, splits, preds, crop_mask="predicted", not_cropped={"s8": why}, **args)
    row = flow.set_index(["stage", "group"])
    uncropped = row.loc[("cropped", "not cropped: predicted tumor mask empty or implausible")]
    assert uncropped["n"] == 1 and uncropped["excluded"] == "s8" and uncropped["reason"] == f"s8: {why}"
    evaluated = row.loc[("evaluated", "m (cv)")]
    assert evaluated["excluded"] == "s8" and evaluated["reason"].startswith("not cropped (predicted tumor mask")
    assert "predictions.tsv" not in evaluated["reason"]


def test_characteristics_by_cohort_and_fold_with_tests() -> None:
    samples, _, splits, _ = cohort()
    samples["age"] = [str(a) for a in (50, 61, 47, 70, 55, 66, 58, 72, 49, 80)]
    table = characteristics_table(samples.rename(columns={"y": "label"}).assign(y=samples["y"]), splits,
                                  label="label", clinical=["tumor_diameter"], external_cohorts=["ext"])
    assert list(table["variable"].unique()) == ["label", "age", "sex"]  # absent clinical column skipped
    assert "internal 'train' (n=8)" in table.columns and "fold 1 test (n=4)" in table.columns
    age = table[table["variable"] == "age"].iloc[0]
    # cohorts are not random: tested; stratified folds are: described, not tested (CONSORT)
    assert age["test across cohorts"] == "Mann-Whitney U" and age["test across folds"] == RANDOM
    assert age["p across folds"] == "" and (table["test across folds"].isin([RANDOM, ""])).all()
    sex = table[table["variable"] == "sex"].iloc[0]
    assert sex["test across cohorts"] == "Fisher's exact" and float(sex["p across cohorts"]) == pytest.approx(1.0)
    assert age["internal 'train' (n=8)"] == "59.5 [53.8, 67.0]"


def test_failures_at_each_models_threshold() -> None:
    _, qc, _, preds = cohort()
    failures = misclassified(preds, qc)
    got = {(r.cohort, r.subject, r.error) for r in failures.itertuples()}
    # s2 is a false positive in cross-validation; s9 (label 1) externally has mean p 0.475 >= mean
    # threshold 0.45, so it is correct; s10 (label 0, p 0.1) is correct
    assert got == {("cv", "s2", "false positive")}
    preds.loc[preds["subject"] == "s9", "threshold"] = [0.6, 0.6]
    failures = misclassified(preds, qc)
    assert ("external", "s9", "false negative") in {(r.cohort, r.subject, r.error) for r in failures.itertuples()}
    assert failures.set_index("subject").at["s2", "qc_montage"] == "qc/s2.png"


def test_checklist_numbering_is_the_published_one() -> None:
    assert [n for n, _, _ in CHECKLISTS["claim"].items] == CLAIM_2024_NUMBERS
    claim = {n: topic for n, _, topic in CHECKLISTS["claim"].items}
    assert "kept apart" in claim["20"] and "failure" in claim["39"] and "characteristics" in claim["36"]
    assert [n for n, _, _ in CHECKLISTS["tripod_ai"].items] == TRIPOD_AI_NUMBERS
    assert [n for n, _, _ in CHECKLISTS["clear"].items] == CLEAR_NUMBERS
    sections = {n: section for n, section, _ in CHECKLISTS["clear"].items}
    assert sections["12"] == "Methods: study design" and sections["13"] == "Methods: data"
    assert sections["44"] == "Results" and sections["53"] == "Open science" and sections["52"] == "Discussion"
    assert len({n.rstrip("abcdefg") for n in TRIPOD_AI_NUMBERS}) == 27
    assert set(VERIFIED) == set(CHECKLISTS)
    assert CHECKLISTS["claim"].doi == "10.1148/ryai.240300" and CHECKLISTS["tripod_ai"].doi == "10.1136/bmj-2023-078378"
    assert CHECKLISTS["clear"].doi == "10.1186/s13244-023-01415-8"


def test_checklists_are_filled_from_the_run_and_say_what_is_left() -> None:
    config = report_facts_for(tiny_config())
    facts = RunFacts(config, n_internal=12, n_internal_positive=7, n_external=2, n_flagged=1,
                     models=["t1ce_resnet18", "fusion_mean"], n_failures=3)
    claim = fill_checklist("claim", facts).set_index("item")
    assert set(claim["status"]) <= {FILLED, AUTHOR, NA}
    assert claim.at["35", "status"] == FILLED and claim.at["35", "evidence"] == "reporting/flow.tsv"
    assert claim.at["33", "status"] == FILLED and claim.at["44", "status"] == AUTHOR
    assert (claim.loc[claim["status"] == FILLED, "evidence"] != "").all()
    no_external = fill_checklist("claim", RunFacts(config, 12, 7, 0, 0, ["m"], 0)).set_index("item")
    assert no_external.at["33", "status"] == NA and "cohort.external" in no_external.at["33", "text"]


def test_finished_run_writes_the_reporting_folder(finished_run: Path) -> None:
    folder = finished_run / "results/demo/reporting"
    flow = pd.read_csv(folder / "flow.tsv", sep="\t")
    sheet = pd.read_csv(finished_run / "data/demo/samples.tsv", sep="\t")
    assert flow.iloc[0]["n"] == len(sheet) and flow["excluded"].isna().all()
    table = pd.read_csv(folder / "characteristics.tsv", sep="\t")
    assert {"label", "age", "sex"} <= set(table["variable"])
    failures = pd.read_csv(folder / "failures.tsv", sep="\t")
    predictions = pd.read_csv(finished_run / "results/demo/tables/predictions.tsv", sep="\t")
    assert set(failures["model"]) <= set(predictions["model"])
    for name, n in (("claim", 44), ("tripod_ai", 52)):
        checklist = pd.read_csv(folder / f"checklist_{name}.tsv", sep="\t", dtype=str)
        assert len(checklist) == n
        print(name, checklist["status"].value_counts().to_dict())
    assert "pooled out-of-fold" in (finished_run / "results/demo/methods.html").read_text()


def test_radiomics_study_gets_clear_filled_from_its_settings() -> None:
    import yaml
    from snakemake.utils import validate
    from workflow_helpers import REPO

    from oncoflow.report.checklists import checklists_for
    from oncoflow.run_facts import report_facts

    config = yaml.safe_load((REPO / "config/studies/hcc_tace_radiomics_sr.yaml").read_text())
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    assert checklists_for(config) == ["claim", "tripod_ai", "clear"]
    assert checklists_for(tiny_config()) == ["claim", "tripod_ai"]
    facts = RunFacts(report_facts(config, []), 40, 20, 0, 0, ["radiomics_original", "radiomics_sr", "clinical"], 5)
    clear = fill_checklist("clear", facts).set_index("item")
    assert clear.at["23", "status"] == FILLED and "32 bins" in clear.at["23", "text"]
    assert "super-resolution along z" in clear.at["22", "text"] and clear.at["42", "status"] == FILLED
    claim = fill_checklist("claim", facts).set_index("item")
    assert claim.at["24", "status"] == NA and claim.at["33", "status"] == NA
    for name in ("claim", "tripod_ai", "clear"):
        print(name, fill_checklist(name, facts)["status"].value_counts().to_dict())
    # CLEAR 19 (segmentation) says which masks the features came from whenever the workflow segments
    assert "predicted" not in clear.at["19", "text"]

    def item19(crop_mask: str, feature_mask: str, predicted: list[str]) -> str:
        config["segment"].update(crop_mask=crop_mask, feature_mask=feature_mask)
        facts = RunFacts(report_facts(config, [], predicted), 36, 20, 4, 0, ["radiomics_original"], 5)
        return fill_checklist("clear", facts).set_index("item").at["19", "text"]

    text = item19("predicted", "manual", [])
    assert "CNN crops used the workflow's cross-fitted predicted masks" in text
    assert "The features were computed from the manual masks, not from the predicted ones" in text
    text = item19("manual", "predicted", [f"s{k}" for k in range(40)])
    assert "CNN crops" not in text and "computed from the cross-fitted predicted masks of all 40 patients" in text
    text = item19("manual", "predicted_where_missing", ["s3", "s7"])
    assert ("computed from the manual masks for 38 of 40 patients and from the cross-fitted predicted masks for "
            "the 2 without one (s3, s7)") in text


def site_splits(scheme: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """12 internal patients at sites A (5), B (5) and C (2, one class), 2 external at X; folds by
    ``scheme`` (oncoflow.train.folds), as split_folds makes them."""
    from oncoflow.train.folds import make_folds

    samples = pd.DataFrame({"subject": [f"s{i:02d}" for i in range(14)], "cohort": ["train"] * 12 + ["ext"] * 2,
                            "y": [1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0],
                            "site": [" A"] * 5 + ["B"] * 5 + ["C", "C", "X", "X"],  # padded, as a sheet may be
                            "sex": list("MFMFMFMFMFMFMF")})
    splits = make_folds(samples.rename(columns={"y": "label"}), label="label", folds=2, seed=1, val_fraction=0.25,
                        external_cohorts=("ext",), scheme=scheme, site="site", min_site_size=4)
    return samples.assign(label=samples["y"]), splits


def test_characteristics_site_block_reads_by_scheme() -> None:
    samples, splits = site_splits("leave_one_site_out")
    table = characteristics_table(samples, splits, label="label", clinical=[], external_cohorts=["ext"], site="site")
    assert list(table["variable"].unique()) == ["label", "site", "sex"]
    site = table[table["variable"] == "site"].set_index("level")
    # leave-one-site-out: each test fold's header names its site; C (too small, one class) only trains
    assert "fold 0 test: site A (n=5)" in table.columns and "fold 1 test: site B (n=5)" in table.columns
    assert site.at["= A", "fold 0 test: site A (n=5)"] == "5 (100%)" and site.at["= C", "internal 'train' (n=12)"] == "2 (17%)"
    assert site.at["= C", "fold 0 test: site A (n=5)"] == "0 (0%)" and site.at["= X", "external 'ext' (n=2)"] == "2 (100%)"
    # the folds (and the cohorts) hold disjoint sites: a test would only restate the design
    assert site.at["= A", "test across folds"] == BY_DESIGN and site.at["= A", "p across folds"] == ""
    assert site.at["= A", "test across cohorts"] == BY_DESIGN
    assert table[table["variable"] == "sex"].iloc[0]["test across folds"] == "Fisher's exact"  # A vs B
    samples, splits = site_splits("stratified")
    table = characteristics_table(samples, splits, label="label", clinical=[], external_cohorts=["ext"], site="site")
    site = table[table["variable"] == "site"].set_index("level")
    assert "fold 0 test (n=6)" in table.columns  # sites shared by random folds: plain headers, no test
    assert site.at["= A", "test across folds"] == RANDOM and site.at["= A", "test across cohorts"] == BY_DESIGN
    no_site = characteristics_table(samples, splits, label="label", clinical=[], external_cohorts=["ext"])
    assert "site" not in set(no_site["variable"])


def test_flow_lists_each_sites_tested_and_trained_only_patients(tmp_path: Path) -> None:
    samples, splits = site_splits("leave_one_site_out")
    preds = splits[splits["role"].isin(["test", "external"])].rename(columns={"label": "y_true"})
    qc = pd.DataFrame({"subject": samples["subject"], "flag": ""})
    flow = participant_flow(samples, qc, splits, preds.assign(model="m", probability=0.5),
                            ingested=list(samples["subject"]), external_cohorts=["ext"])
    sites = flow[flow["stage"] == "sites"].set_index("group")
    assert list(sites.index) == ["site 'A': tested (fold 0)", "site 'B': tested (fold 1)", "site 'C': trained only",
                                 "site 'X': external"]
    assert sites["n"].tolist() == [5, 5, 2, 2] and sites["n_positive"].tolist() == [3, 2, 0, 1]
    assert sites.at["site 'C': trained only", "reason"] == "in no test fold of folds/splits.tsv"
    plot_flow(flow, tmp_path / "flow.png")
    assert (tmp_path / "flow.png").stat().st_size > 10_000
    samples, splits = site_splits("site_grouped")
    flow = participant_flow(samples, qc, splits, preds.assign(model="m", probability=0.5),
                            ingested=list(samples["subject"]), external_cohorts=["ext"])
    tested = flow[flow["group"].str.contains("tested")]
    assert tested["n"].sum() == 12 and not flow["group"].str.contains("trained only").any()  # every site tested once
    no_site = participant_flow(samples, qc, splits.drop(columns="site"), preds.assign(model="m", probability=0.5),
                               ingested=list(samples["subject"]), external_cohorts=["ext"])
    assert "sites" not in set(no_site["stage"])


def test_checklists_state_the_sites_and_scheme_that_ran() -> None:
    config = tiny_config()
    models = ["t1ce_resnet18", "baseline"]
    tripod = fill_checklist("tripod_ai", RunFacts(report_facts_for(config, True), 12, 7, 2, 0, models, 0)).set_index("item")
    assert tripod.at["12d", "status"] == AUTHOR and tripod.at["23b", "status"] == AUTHOR  # no cohort.site
    assert tripod.at["12a", "text"].endswith("every internal patient tested once.")
    config["cohort"]["site"] = "centre"
    config["cv"]["scheme"] = "leave_one_site_out"
    config["harmonisation"]["method"] = "combat"
    facts = RunFacts(report_facts_for(config, True), 12, 7, 2, 0, models, 0)
    tripod = fill_checklist("tripod_ai", facts).set_index("item")
    assert tripod.at["12d", "status"] == FILLED and "`centre` column" in tripod.at["12d", "text"]
    assert "leave-one-site-out" in tripod.at["12d", "text"] and "ComBat harmonisation of the features of baseline" \
        in tripod.at["12d", "text"]
    assert tripod.at["23b", "evidence"].startswith("tables/metrics_by_site.tsv")
    claim = fill_checklist("claim", facts).set_index("item")
    assert claim.at["32", "text"].startswith("Leave-one-site-out cross-validation; every patient of a tested site")
    assert "-fold" not in claim.at["6", "text"] and "site" in claim.at["36", "text"] and "site" in claim.at["35", "text"]


def shipped_facts() -> dict[str, object]:
    """The plan's facts of the default config and of every study config (with the baseline)."""
    import yaml
    from workflow_helpers import REPO

    paths = [REPO / "config/config.yaml", *sorted((REPO / "config/studies").glob("*.yaml"))]
    return {p.name: report_facts_for(yaml.safe_load(p.read_text()), baseline=True) for p in paths}


@pytest.mark.parametrize("name", sorted(shipped_facts()))
def test_no_checklist_answer_is_another_items_answer(name: str) -> None:
    """Issue #28: TRIPOD+AI 9a repeated 8a, 9b repeated 7, CLAIM 38 repeated 37. For the demo and
    every study shape, with and without an external cohort, sites and threshold-metric CIs, no two
    items of a checklist give the same answer."""
    from oncoflow.report.checklists import THRESHOLD_CIS, checklists_for

    plan = shipped_facts()[name]
    for external, columns, site in ((0, (), None), (2, THRESHOLD_CIS, "site")):
        facts = RunFacts(replace(plan, site=site), 20, 7, external, 1, plan.models, 3, columns)
        for checklist in checklists_for(plan.config):
            table = fill_checklist(checklist, facts)
            same = table[table.duplicated("text", keep=False)].groupby("text")["item"].apply(list)
            assert same.empty, f"{name} {checklist}: identical answers {same.tolist()}"


def test_threshold_precision_is_filled_only_with_its_intervals_and_balance_is_said() -> None:
    """CLAIM 38 and TRIPOD+AI 23a ask for sensitivity, specificity, PPV and NPV with CIs: filled
    only when tables/metrics.tsv has them. A balanced cohort's weighted loss corrects nothing."""
    from oncoflow.report.checklists import THRESHOLD_CIS

    plan = report_facts_for(tiny_config())
    without = RunFacts(plan, 20, 10, 0, 0, plan.models, 0, ("auc", "auc_ci_low", "auc_ci_high"))
    claim, tripod = (fill_checklist(c, without).set_index("item") for c in ("claim", "tripod_ai"))
    assert claim.at["38", "status"] == AUTHOR and tripod.at["23a", "status"] == AUTHOR
    assert "without confidence intervals" in claim.at["38", "text"]
    assert tripod.at["13", "text"].startswith("The internal cohort is balanced (10 of 20 positive): no imbalance")
    with_cis = RunFacts(plan, 20, 6, 0, 0, plan.models, 0, THRESHOLD_CIS)
    claim, tripod = (fill_checklist(c, with_cis).set_index("item") for c in ("claim", "tripod_ai"))
    assert claim.at["38", "status"] == FILLED and tripod.at["23a", "status"] == FILLED
    assert "sensitivity, specificity, PPV and NPV" in claim.at["37", "text"]
    assert tripod.at["13", "text"] == "Class imbalance (6 of 20 positive) handled by weighted_loss."


EVIDENCE_COLUMNS = {"tables/metrics.tsv": {"AUC": "auc", "sensitivity": "sensitivity", "specificity": "specificity",
                                           "PPV": "ppv", "NPV": "npv", "Brier": "brier", "slope": "cal_slope"},
                    "tables/comparisons.tsv": {"DeLong": "p_adjusted"}}


@pytest.mark.slow
def test_every_filled_item_names_evidence_that_exists_and_holds_it(finished_run: Path) -> None:
    """Each "filled" item of the finished run's checklists names files that exist, and the tables
    it names have the columns of the metrics it mentions (their CIs where it mentions CIs)."""
    import glob

    results = finished_run / "results/demo"
    for path in sorted((results / "reporting").glob("checklist_*.tsv")):
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        for _, row in table[table["status"] == FILLED].iterrows():
            assert row["evidence"], (path.name, row["item"])
            for evidence in row["evidence"].split("; "):
                name = evidence.split(" (")[0].replace("<model>", "*").replace("<k>", "*")
                found = glob.glob(str(results / name))
                assert found, f"{path.name} item {row['item']}: evidence {name} not in the run"
                for word, column in EVIDENCE_COLUMNS.get(name, {}).items():
                    if word in row["text"]:
                        header = pd.read_csv(found[0], sep="\t", nrows=0).columns
                        wanted = [column, *([f"{column}_ci_low"] if "CI" in row["text"] and column != "p_adjusted"
                                            and word in row["text"].split("CI", 1)[1] else [])]
                        assert set(wanted) <= set(header), (path.name, row["item"], wanted)


def test_failures_print_distinct_probabilities_as_distinct() -> None:
    """Issue #28: failures.md printed "p = 0.999, threshold 1.000" for 0.9992 vs 0.9998."""
    from oncoflow.report.failures import distinct_probabilities, failures_markdown

    assert distinct_probabilities(0.9992, 0.9998) == ("0.9992", "0.9998")
    assert distinct_probabilities(0.41, 0.5) == ("0.410", "0.500")
    assert distinct_probabilities(0.00002, 0.3) == ("0.00002", "0.30000")  # not "0.000"
    failures = pd.DataFrame([{"model": "m", "cohort": "cv", "subject": "s1", "y_true": 0, "probability": 0.9998,
                              "threshold": 0.9992, "error": "false positive", "qc_flag": "", "qc_montage": "qc/s1.png"}])
    assert "(p = 0.9998, threshold 0.9992)" in failures_markdown(failures, {("m", "cv"): 4})
