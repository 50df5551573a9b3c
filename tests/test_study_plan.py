"""oncoflow.plan.StudyPlan: the one resolved plan of a study (common.smk's PLAN), on a tiny demo
sheet: params that finished jobs were made with stay exactly as they were, and the lists the rules
read come out of the config and sheet."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from plan_digest import synthetic_config
from snakemake.utils import validate

from oncoflow.run_facts import ReportFacts
from oncoflow.plan import StudyPlan
from oncoflow.demo import make_demo_cohort
from oncoflow.metrics.choices import FIGURES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("plan")
    sheet = make_demo_cohort(root / "data", 8, seed=5, voxel_scale=4.0, external_fraction=0.25)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["cohort"]["samples"] = str(sheet)
    config["cv"]["folds"] = 2
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return config


def test_params_keep_their_values(config: dict) -> None:
    plan = StudyPlan.from_config(config)
    params = plan.model_params("flair_resnet18")
    # the keys train_model's finished jobs were made with, nothing added (a params change reruns);
    # the train section's keys since issue #24, whose default selection (val_loss) changed the kept
    # epoch: models made before it rerun on purpose
    assert set(params) == {"modalities", "architecture", "init", "weights", "epochs", "batch_size", "lr",
                           "weight_decay", "patience", "imbalance", "crop", "seed", "select_on", "selection",
                           "inner_folds"}
    assert params["modalities"] == ["flair"] and params["seed"] == config["cv"]["seed"]
    # train.nested_model only where it decides something: nested models rerun when it changes,
    # finished inner_val models keep their params
    nested = StudyPlan.from_config({**config, "train": {**config["train"], "selection": "nested"}})
    assert nested.model_params("flair_resnet18")["nested_model"] == "ensemble"
    assert "region" not in params["crop"] and "region" not in plan.crop_params  # tumor: the default
    assert set(plan.crop_params) == {"size", "margin_mm"}


def test_lists_come_from_config_and_sheet(config: dict) -> None:
    plan = StudyPlan.from_config(config)
    assert list(plan.models) == [f"{m}_resnet18" for m in config["ingest"]["modalities"]]
    assert plan.fused == list(plan.models) and plan.folds == [0, 1]
    assert plan.subjects == plan.front_subjects and plan.maskless_subjects == [] and not plan.pretrain_jobs
    assert sorted(plan.subjects_from("dicom")) == sorted(plan.subjects)
    predictions = plan.all_predictions()
    assert plan.baseline_models == ["baseline"]  # every subject has a tumor mask
    assert len(predictions) == (len(plan.models) + len(plan.fusion_methods) + 1) * 2
    assert {f"{plan.results}/figures/{k}.{e}" for k in FIGURES for e in ("png", "pdf")} <= set(plan.final_targets())
    assert plan.radiomics_models == [] and plan.sr_train == []


def test_cross_field_checks_run_when_the_plan_is_built(config: dict) -> None:
    bad = copy.deepcopy(config)
    bad["evaluate"]["dca_range"] = [0.5, 0.2]
    with pytest.raises(ValueError, match="evaluate.dca_range"):
        StudyPlan.from_config(bad)


def test_bundle_carries_radiomics_models_but_not_harmonised_ones(config: dict) -> None:
    """Radiomics, clinical and combined models are bundled (their model.json, the features' records,
    the sr generator); under ComBat the models fitted on harmonised features (baseline, radiomics_*,
    combined_*) are left out naming why, since the fold's ComBat parameters are not saved."""
    plain = StudyPlan.from_config(config)
    assert plain.bundle_params["radiomics"]["models"] == {} and plain.bundle_params["left_out"] == {}
    rad = copy.deepcopy(config)
    rad["radiomics"].update(activate=True, variants=["original", "sr"], clinical=["age"])
    plan = StudyPlan.from_config(rad)
    params, inputs = plan.bundle_params, plan.bundle_inputs()
    assert params["radiomics"]["models"] == {"radiomics_original": "original", "radiomics_sr": "sr",
                                             "clinical": None, "combined_original": "original", "combined_sr": "sr"}
    assert params["radiomics"]["generator"] == "results/demo/superres/generator.pt"
    assert "results/demo/models/combined_sr/fold1/model.json" in inputs["radiomics_models"]
    assert "results/demo/radiomics/sr/settings.json" in inputs["radiomics_inputs"] and params["left_out"] == {}
    rad["cohort"]["site"] = "site"
    rad["harmonisation"]["method"] = "combat"
    plan = StudyPlan.from_config(rad)
    params = plan.bundle_params
    assert params["radiomics"]["models"] == {"clinical": None} and not params["baseline"]
    assert set(params["left_out"]) == {"baseline", "radiomics_original", "radiomics_sr", "combined_original",
                                       "combined_sr"}
    assert all("ComBat parameters are not saved" in why for why in params["left_out"].values())
    assert params["radiomics"]["generator"] is None and not plan.bundle_inputs()["coefficients"]


def test_report_facts_are_the_plans_own_decisions_and_survive_the_rule_params(config: dict, tmp_path: Path) -> None:
    plan = StudyPlan.from_config(config)
    facts = plan.report_facts
    assert ReportFacts.from_params(facts.params()) == facts
    assert facts.models == plan.model_names and facts.repeats == 1
    assert facts.recalibration == plan.evaluate_params["recalibration"]
    assert facts.cnn["flair_resnet18"].modalities == ("flair",) and facts.baseline and not facts.harmonised
    # ComBat on: the harmonised models are the plan's one list (the bundle leaves the same ones out)
    combat = StudyPlan.from_config(synthetic_config("config/studies/lgg_radiomics.yaml+combat", tmp_path))
    assert combat.report_facts.harmonised == tuple(combat.harmonised_models) == tuple(combat.bundle_params["left_out"])
    assert combat.report_facts.harmonised == ("baseline", "radiomics_original", "radiomics_sr", "combined_original",
                                              "combined_sr")
