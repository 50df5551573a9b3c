"""Multi-centre studies (issue #16): the site column (cohort.site) and the validation schemes
(cv.scheme), on a sheet with the real TCGA LGG cohort's site structure (and the real sheet when
../shared/data is there), the per-site metrics, and the sheet checks."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate
from workflow_helpers import REPO

from oncoflow.config import ConfigError
from oncoflow.plan import StudyPlan
from oncoflow.sheet import load_samples
from oncoflow.metrics.evaluate import add_sites, subject_sites
from oncoflow.metrics.sites import metrics_by_site
from oncoflow.train.folds import FoldError, check_folds, leave_one_site_out_sites, make_folds, split_params

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
# (site, patients, COCCluster 2 positives) of the 110 TCGA LGG patients (issue #16)
LGG_SITES = (("CS", 16, 5), ("DU", 45, 9), ("FG", 14, 4), ("HT", 34, 6), ("EZ", 1, 0))


def lgg_like(n_external: int = 6) -> pd.DataFrame:
    """The LGG cohort's sites, sizes and positives (labels shuffled within each site), plus an
    external cohort scanned at a sixth site."""
    rng = np.random.default_rng(16)
    rows = []
    for site, n, pos in LGG_SITES:
        labels = rng.permutation([1] * pos + [0] * (n - pos))
        rows += [{"subject": f"TCGA_{site}_{k:04d}", "cohort": "train", "y": int(v), "site": site}
                 for k, v in enumerate(labels)]
    rows += [{"subject": f"EXT_{k:02d}", "cohort": "external", "y": k % 2, "site": "XY"} for k in range(n_external)]
    return pd.DataFrame(rows)


def sha(table: pd.DataFrame) -> str:
    return hashlib.sha256(table.to_csv(sep="\t", index=False).encode()).hexdigest()


def check_patient_level(splits: pd.DataFrame) -> None:
    """One role per patient and fold; each patient tested at most once (per repeat)."""
    assert not splits.duplicated(["fold", "subject"]).any()
    by = ["repeat", "subject"] if "repeat" in splits.columns else ["subject"]
    assert (splits[splits["role"] == "test"].groupby(by).size() == 1).all()
    assert not (splits.loc[splits["role"] == "external", "subject"].str.startswith("TCGA")).any()


# --- stratified (default): the same bytes as before sites existed ------------------------------------
def test_default_scheme_gives_the_splits_of_before_byte_for_byte() -> None:
    sheet = lgg_like()
    # sha256 of the TSV written by make_folds at ba80792 (before sites), for the same sheet and settings
    before = {1: "6e64adb10457ef9b8cf09939d9180591c0f1b5c817de1ed16608dca13cf2cdca",
              3: "a62adf7b7239c72933e9555ecbc01722ab0f65f7500c5ea11ceda64a157cbf8e"}
    for repeats, digest in before.items():
        kw = {"label": "y", "folds": 5, "seed": 42, "val_fraction": 0.25, "repeats": repeats}
        plain = make_folds(sheet.drop(columns="site"), **kw)
        assert sha(plain) == digest
        # with cohort.site the same folds, plus the site column beside the label
        with_site = make_folds(sheet, **kw, site="site")
        assert list(with_site.columns[:5]) == ["subject", "fold", "role", "label", "site"]
        assert sha(with_site.drop(columns="site")) == digest
        assert (with_site["site"] == with_site["subject"].map(sheet.set_index("subject")["site"])).all()


# --- site_grouped ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 42])
def test_grouped_folds_never_split_a_site(seed: int) -> None:
    sheet = lgg_like()
    splits = make_folds(sheet, label="y", folds=3, seed=seed, val_fraction=0.25, scheme="site_grouped", site="site")
    check_patient_level(splits)
    test = splits[splits["role"] == "test"]
    assert (test.groupby("site")["fold"].nunique() == 1).all()  # every site in one test fold
    assert set(test["site"]) == {s for s, _, _ in LGG_SITES}  # every internal patient tested once
    assert len(test) == 110
    for fold, part in splits.groupby("fold"):
        tested = set(part.loc[part["role"] == "test", "site"])
        trained = set(part.loc[part["role"].isin(["train", "val"]), "site"])
        assert not tested & trained, (fold, tested & trained)  # the model never saw its test sites
        assert part.loc[part["role"] == "test", "label"].nunique() == 2
    again = make_folds(sheet, label="y", folds=3, seed=seed, val_fraction=0.25, scheme="site_grouped", site="site")
    assert sha(again) == sha(splits)  # seeded


def test_grouped_folds_need_as_many_sites_as_folds() -> None:
    with pytest.raises(FoldError, match="needs at least 6 internal sites.*has 5"):
        make_folds(lgg_like(), label="y", folds=6, seed=0, val_fraction=0.25, scheme="site_grouped", site="site")
    with pytest.raises(FoldError, match="needs cohort.site"):
        make_folds(lgg_like(), label="y", folds=3, seed=0, val_fraction=0.25, scheme="site_grouped")


# --- leave_one_site_out ----------------------------------------------------------------------------
def test_leave_one_site_out_tests_every_qualifying_site_exactly_once() -> None:
    sheet = lgg_like()
    splits = make_folds(sheet, label="y", folds=5, seed=42, val_fraction=0.25, scheme="leave_one_site_out",
                        site="site", min_site_size=10)
    check_patient_level(splits)
    test = splits[splits["role"] == "test"]
    # CS, DU, FG, HT in sorted order; EZ (1 patient, no positive) only trains
    assert [sorted(set(test.loc[test["fold"] == k, "site"])) for k in range(4)] == [["CS"], ["DU"], ["FG"], ["HT"]]
    assert test.groupby("site").size().to_dict() == {"CS": 16, "DU": 45, "FG": 14, "HT": 34}
    ez = splits[splits["site"] == "EZ"]
    assert set(ez["role"]) <= {"train", "val"} and ez["fold"].nunique() == 4
    for _fold, part in splits.groupby("fold"):
        site = part.loc[part["role"] == "test", "site"].iloc[0]
        inner = part[part["role"].isin(["train", "val"])]
        assert site not in set(inner["site"])  # trained on the other sites only
        assert inner.loc[inner["role"] == "val", "label"].nunique() == 2  # inner validation: patient-level, stratified
        assert set(part.loc[part["role"] == "external", "subject"]) == set(sheet.loc[sheet["cohort"] == "external", "subject"])
    assert leave_one_site_out_sites(sheet, label="y", site="site", external_cohorts=("external",),
                                    min_site_size=10) == ["CS", "DU", "FG", "HT"]


def test_leave_one_site_out_rule_for_small_and_single_class_sites() -> None:
    sheet = lgg_like()
    # min_site_size 15: FG (14) joins EZ in training only
    splits = make_folds(sheet, label="y", folds=5, seed=42, val_fraction=0.25, scheme="leave_one_site_out",
                        site="site", min_site_size=15)
    assert sorted(splits.loc[splits["role"] == "test", "site"].unique()) == ["CS", "DU", "HT"]
    # a site with one class never tests, whatever its size
    one_class = sheet.assign(y=np.where(sheet["site"] == "DU", 0, sheet["y"]))
    splits = make_folds(one_class, label="y", folds=5, seed=42, val_fraction=0.25, scheme="leave_one_site_out",
                        site="site", min_site_size=2)
    assert "DU" not in set(splits.loc[splits["role"] == "test", "site"])
    # fewer than two qualifying sites: an error listing every site and why
    with pytest.raises(FoldError, match=r"at least 2 sites.*DU \(45 patients, 9 positive\).*EZ \(1 patient, "
                                        r"0 positive: trains only\)"):
        make_folds(sheet, label="y", folds=5, seed=42, val_fraction=0.25, scheme="leave_one_site_out",
                   site="site", min_site_size=40)
    with pytest.raises(FoldError, match="single split"):
        make_folds(sheet, label="y", folds=5, seed=42, val_fraction=0.25, scheme="leave_one_site_out",
                   site="site", repeats=2)


@pytest.fixture()
def real_lgg(shared_data: Path, tmp_path: Path) -> tuple[dict, pd.DataFrame]:
    from oncoflow.cohorts import write_lgg_tcga_sheet

    sheet = write_lgg_tcga_sheet(shared_data / "lgg_tcga", tmp_path / "lgg" / "samples.tsv")
    config = yaml.safe_load((REPO / "config/studies/lgg_radiogenomics.yaml").read_text())
    config["cohort"]["samples"] = str(sheet)
    validate(config, str(SCHEMA), set_default=True)
    return config, load_samples(config)


def test_real_lgg_cohort_under_every_scheme(real_lgg: tuple[dict, pd.DataFrame]) -> None:
    config, samples = real_lgg
    sheet = samples[["subject", "cohort", "y", "site"]].reset_index(drop=True)
    kw = {"label": "y", "folds": 3, "seed": 42, "val_fraction": 0.25, "external_cohorts": (), "site": "site"}
    loso = make_folds(sheet, **kw, scheme="leave_one_site_out", min_site_size=10)
    test = loso[loso["role"] == "test"]
    assert test.groupby("site").agg(n=("label", "size"), pos=("label", "sum")).to_dict("index") == {
        "CS": {"n": 16, "pos": 5}, "DU": {"n": 45, "pos": 9}, "FG": {"n": 14, "pos": 4}, "HT": {"n": 34, "pos": 6}}
    grouped = make_folds(sheet, **kw, scheme="site_grouped")
    assert (grouped[grouped["role"] == "test"].groupby("site")["fold"].nunique() == 1).all()
    for splits in (loso, grouped, make_folds(sheet, **kw)):
        check_patient_level(splits)


# --- config, sheet and plan ------------------------------------------------------------------------
def demo_config(tmp_path: Path, sites: list[str] | None = None, **cv) -> dict:
    from workflow_helpers import tiny_config

    from oncoflow.demo import make_demo_cohort

    sheet_path = make_demo_cohort(tmp_path / "data", 12, seed=5, voxel_scale=4.0, external_fraction=0.25)
    if sites is not None:
        sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
        sheet["site"] = sites + list(sheet["site"][len(sites):])
        sheet.to_csv(sheet_path, sep="\t", index=False)
    config = tiny_config()
    config["cohort"].update(samples=str(sheet_path), site="site")
    config["cv"].update(cv)
    validate(config, str(SCHEMA), set_default=True)
    return config


def test_blank_or_missing_site_column_is_an_error_naming_the_rows(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    sheet_path = Path(config["cohort"]["samples"])
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    assert set(sheet["site"]) == {"SGH", "SRMC"}  # the demo's two scanning sites
    sheet.loc[[2, 5], "site"] = ["", "NA"]
    sheet.to_csv(sheet_path, sep="\t", index=False)
    with pytest.raises(ConfigError, match=rf"column 'site' \(cohort.site\): no site at line 4 \(subject "
                                          rf"'{sheet.at[2, 'subject']}'\), line 7 \(subject '{sheet.at[5, 'subject']}'\)"):
        load_samples(config)
    config["cohort"]["site"] = "centre"
    with pytest.raises(ConfigError, match="cohort.site: sample sheet .* has no column 'centre'"):
        load_samples(config)


def test_plan_folds_and_params_follow_the_scheme(tmp_path: Path) -> None:
    # 9 internal demo subjects over three sites, each with both classes
    config = demo_config(tmp_path, sites=["A", "B", "C"] * 3, scheme="leave_one_site_out", min_site_size=2)
    labels = pd.read_csv(config["cohort"]["samples"], sep="\t")["label"][:9]
    assert all(labels[k::3].nunique() == 2 for k in range(3))
    plan = StudyPlan.from_config(config)
    assert plan.test_sites == ["A", "B", "C"] and plan.folds == [0, 1, 2] and plan.folds_per_repeat == 3
    assert plan.split_params["scheme"] == "leave_one_site_out" and plan.split_params["site"] == "site"
    assert plan.site_targets() and set(plan.site_targets()) <= set(plan.final_targets())
    # the default scheme without sites keeps split_folds' params of before (a change would rerun it)
    plain = copy.deepcopy(config)
    plain["cohort"]["site"] = None
    plain["cv"].update(scheme="stratified", min_site_size=10)
    assert split_params(plain) == {"folds": 3, "seed": 42, "val_fraction": 0.34, "repeats": 1}
    # too few qualifying sites stops the DAG with the sites listed
    config["cv"]["min_site_size"] = 4
    with pytest.raises(ConfigError, match=r"scheme leave_one_site_out.*A \(3 patients"):
        check_folds(config, load_samples(config))


# --- per-site metrics --------------------------------------------------------------------------------
def test_metrics_by_site_counts_and_aucs() -> None:
    sheet = lgg_like()
    splits = make_folds(sheet, label="y", folds=5, seed=42, val_fraction=0.25, scheme="leave_one_site_out", site="site")
    rng = np.random.default_rng(0)
    preds = splits.rename(columns={"label": "y_true"}).drop(columns="site").assign(model="m")
    # a score that ranks perfectly at DU, at random elsewhere
    preds["probability"] = np.where(preds["subject"].str.contains("_DU_"), 0.2 + 0.6 * preds["y_true"],
                                    rng.uniform(size=len(preds)))
    preds = add_sites(preds, subject_sites(splits))
    assert list(preds.columns[:2]) == ["subject", "site"]
    from oncoflow.metrics.evaluate import pool_predictions

    table = metrics_by_site(pool_predictions(preds), n_boot=200)
    cv = table[table["cohort"] == "cv"].set_index("site")
    assert cv[["n", "n_pos"]].to_dict("index") == {"CS": {"n": 16, "n_pos": 5}, "DU": {"n": 45, "n_pos": 9},
                                                    "FG": {"n": 14, "n_pos": 4}, "HT": {"n": 34, "n_pos": 6}}
    assert cv.at["DU", "auc"] == 1.0
    assert (cv["auc_ci_high"] - cv["auc_ci_low"]).drop("DU").gt(0.2).all()  # small sites: wide CIs, shown
    ext = table[table["cohort"] == "external"]
    assert ext["site"].tolist() == ["XY"] and int(ext["n"].iloc[0]) == 6
    with pytest.raises(ValueError, match="does not list"):
        add_sites(preds.assign(subject="nobody"), subject_sites(splits))


# --- several external cohorts: each evaluated on its own ------------------------------------------------
def test_several_external_cohorts_are_evaluated_and_reported_each_on_its_own(tmp_path: Path) -> None:
    from oncoflow.metrics.evaluate import evaluate_study
    from oncoflow.report.site_figure import evaluate_sites

    sheet = lgg_like(n_external=0)
    ext = [{"subject": f"{c.upper()}_{k:02d}", "cohort": c, "y": k % 2, "site": c.upper()}
           for c, n in (("ext_a", 10), ("ext_b", 8)) for k in range(n)]
    sheet = pd.concat([sheet, pd.DataFrame(ext)], ignore_index=True)
    splits = make_folds(sheet, label="y", folds=3, seed=0, val_fraction=0.25, external_cohorts=("ext_a", "ext_b"),
                        site="site")
    assert list(splits.columns) == ["subject", "fold", "role", "label", "site", "cohort"]
    # one external cohort keeps the table of before (no cohort column)
    one = make_folds(sheet[sheet["cohort"] != "ext_b"], label="y", folds=3, seed=0, val_fraction=0.25,
                     external_cohorts=("ext_a", "ext_b"))
    assert "cohort" not in one.columns
    preds = splits.rename(columns={"label": "y_true"})[["subject", "fold", "role", "y_true"]].assign(model="m")
    rng = np.random.default_rng(1)
    # ranks ext_a perfectly and ext_b exactly backwards: pooled they would read about 0.5
    sign = np.where(preds["subject"].str.startswith("EXT_B"), -1, 1)
    preds["probability"] = np.where(preds["role"] == "external", 0.5 + sign * (preds["y_true"] - 0.5) * 0.6,
                                    rng.uniform(size=len(preds)))
    metrics = evaluate_study(preds, tmp_path, n_boot=200, splits=splits).set_index("cohort")
    assert list(metrics.index) == ["cv", "external:ext_a", "external:ext_b"]
    assert metrics.loc["external:ext_a", ["n", "auc"]].tolist() == [10, 1.0]
    assert metrics.loc["external:ext_b", ["n", "auc"]].tolist() == [8, 0.0]
    per_fold = pd.read_csv(tmp_path / "metrics_per_fold.tsv", sep="\t")
    assert per_fold.groupby("cohort")["fold"].nunique().to_dict() == {"cv": 3, "external:ext_a": 3, "external:ext_b": 3}
    table = evaluate_sites(tmp_path / "predictions.tsv", tmp_path, tmp_path / "figures", n_boot=200)
    assert table.loc[table["cohort"] != "cv", ["cohort", "site", "n"]].values.tolist() == [
        ["external:ext_a", "EXT_A", 10], ["external:ext_b", "EXT_B", 8]]
    assert (tmp_path / "figures/sites.png").stat().st_size > 10_000


def test_scheme_defaults_have_one_home() -> None:
    """The schema holds cv.scheme / cv.min_site_size / cohort.site defaults; the code's agree."""
    from oncoflow.train.folds import MIN_SITE_SIZE, SCHEMES

    props = yaml.safe_load(SCHEMA.read_text())["properties"]
    cv = props["cv"]["properties"]
    assert tuple(cv["scheme"]["enum"]) == SCHEMES and cv["scheme"]["default"] == SCHEMES[0]
    assert cv["min_site_size"]["default"] == MIN_SITE_SIZE
    assert props["cohort"]["properties"]["site"]["default"] is None
