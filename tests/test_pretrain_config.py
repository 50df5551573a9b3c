"""Config for in-domain pretraining (`pretrain`) and co-training (models[].cotrain_segmentation):
schema, cross-checks with a message naming the field, the expanded pretrain jobs, and the weights
a pretraining reads. No torch import at config time (oncoflow.models.catalog)."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from snakemake.utils import validate
from workflow_helpers import REPO, base_config

from oncoflow.config import ConfigError, check_config, expand_models, expand_pretrain
from oncoflow.models import weights as w

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def config_with(pretrain: list[dict], **model) -> dict:
    config = base_config()
    config["pretrain"] = pretrain
    config["models"] = [config["models"][0],
                        {"architecture": "resnet18", "inputs": ["t1ce", "flair+t1ce"], "init": "pretrained",
                         "pretrained": "seg", **model}]
    config["models"][0]["inputs"] = ["t1", "t2"]
    validate(config, str(SCHEMA), set_default=True)
    return config


def test_shipped_config_keeps_its_model_params():
    """The new model keys have no schema default: a config that does not use them gives the
    train_model rule the same params as before (params are a rerun trigger)."""
    config = base_config()
    validate(config, str(SCHEMA), set_default=True)
    assert config["pretrain"] == []
    for spec in expand_models(config).values():
        assert set(spec.params) == {"architecture", "init", "weights", "epochs", "batch_size", "lr",
                                    "weight_decay", "patience", "imbalance"}
    assert expand_pretrain(config, expand_models(config)) == {}


def test_pretrain_jobs_one_per_model_that_uses_them():
    config = config_with([{"name": "seg", "epochs": 3}, {"name": "unused", "task": "tumor_slice"}],
                         cotrain_segmentation=True, seg_weight=0.3)
    check_config(config)
    specs = expand_models(config)
    jobs = expand_pretrain(config, specs)
    assert set(jobs) == {("seg", "t1ce_resnet18"), ("seg", "flair+t1ce_resnet18")}
    job = jobs[("seg", "flair+t1ce_resnet18")]
    assert job.modalities == ("flair", "t1ce") and job.architecture == "resnet18"
    assert job.params == {"name": "seg", "source": "folds", "task": "segmentation", "init": "scratch",
                          "weights": None, "epochs": 3, "batch_size": 32, "lr": 0.001,
                          "weight_decay": 0.0001, "architecture": "resnet18",
                          "modalities": ["flair", "t1ce"]}
    assert specs["t1ce_resnet18"].params["cotrain_segmentation"] is True
    assert specs["t1ce_resnet18"].params["seg_weight"] == 0.3


@pytest.mark.parametrize(("pretrain", "model", "message"), [
    ([{"name": "seg"}], {"pretrained": "segm"}, r"models\[1\]\.pretrained: no pretrain job 'segm' \(pretrain defines seg\)"),
    ([{"name": "seg"}], {"pretrained": None}, r"models\[1\]\.pretrained: init 'pretrained' needs the name"),
    ([{"name": "seg"}], {"weights": "x.pth"}, r"models\[1\]\.weights: init 'pretrained' starts from the workflow's own"),
    ([{"name": "seg"}], {"init": "scratch"}, r"models\[1\]\.pretrained: set, but init is 'scratch'"),
    ([{"name": "seg"}], {"architecture": "vgg16"}, r"models\[1\]\.pretrained: pretrain\[0\] \('seg'\): task 'segmentation' needs a segmentation head"),
    ([{"name": "seg", "task": "tumor_slice"}], {"architecture": "resnet10_3d"}, r"task 'tumor_slice' classifies 2D slices"),
    ([{"name": "seg"}, {"name": "seg"}], {}, r"pretrain\[1\]\.name: 'seg' defined twice"),
    ([{"name": "seg", "source": "cohort"}], {}, r"pretrain\[0\]\.samples: source 'cohort' needs the other cohort's sample sheet"),
    ([{"name": "seg", "samples": "other.tsv"}], {}, r"pretrain\[0\]\.samples: only for source: cohort"),
    ([{"name": "seg", "init": "imagenet"}], {}, r"pretrain\[0\]\.weights: init 'imagenet' needs a local weights file"),
    ([{"name": "seg"}], {"init": "scratch", "pretrained": None, "cotrain_segmentation": True, "architecture": "alexnet"},
     r"models\[1\]\.cotrain_segmentation: 'alexnet' has no segmentation head"),
    ([{"name": "seg"}], {"seg_weight": 0.2}, r"models\[1\]\.seg_weight: only with cotrain_segmentation: true"),
])
def test_errors_name_the_field(pretrain, model, message):
    config = config_with(pretrain)
    config["models"][1].update(model)
    with pytest.raises(ConfigError, match=message):
        check_config(config)


def test_schema_rejects_unknown_pretrain_keys_and_values():
    config = base_config()
    config["pretrain"] = [{"name": "seg", "tasks": "segmentation"}]
    with pytest.raises(Exception, match="tasks"):
        validate(copy.deepcopy(config), str(SCHEMA))
    config["pretrain"] = [{"name": "seg", "task": "jigsaw"}]
    with pytest.raises(Exception, match="jigsaw"):
        validate(copy.deepcopy(config), str(SCHEMA))
    config["pretrain"] = [{"task": "segmentation"}]
    with pytest.raises(Exception, match="name"):
        validate(copy.deepcopy(config), str(SCHEMA))
    config = base_config()
    config["models"][0]["init"] = "pretrained"
    config["models"][0]["pretrained"] = "a b"
    with pytest.raises(Exception, match="a b"):
        validate(config, str(SCHEMA))


def test_pretraining_start_weights_are_required_weights(tmp_path):
    """pretrain[].init: imagenet reads the weights of the architecture of the models using it;
    `snakemake download_models` fetches them like any other."""
    config = config_with([{"name": "seg", "init": "imagenet", "weights": str(tmp_path / "r18.pth")}])
    found = {str(x.path): x for x in w.required_weights(config)}
    entry = found[str(tmp_path / "r18.pth")]
    assert entry.kind == "imagenet" and entry.url == w.IMAGENET_URLS["resnet18"]
    assert entry.field == "pretrain[0].weights"
    with pytest.raises(w.WeightsMissing, match=r"config: pretrain\[0\]\.weights: imagenet weights missing"):
        entry.check()
    config["models"][1]["architecture"] = "alexnet"  # an architecture without a segmentation head...
    config["pretrain"][0]["task"] = "tumor_slice"  # ...pretrained on tumor slices
    config["models"][1]["inputs"] = ["t1ce"]
    config["models"].append({"architecture": "resnet18", "inputs": ["flair"], "init": "pretrained",
                             "pretrained": "seg"})
    with pytest.raises(ValueError, match=r"pretrain\[0\]\.weights: .* also used for other weights"):
        w.required_weights(config)
    config = config_with([{"name": "seg", "init": "medicalnet", "weights": "m.pth"}])
    with pytest.raises(ValueError, match=r"pretrain\[0\]: no medicalnet weights for 'resnet18'"):
        w.required_weights(config)


def test_config_checks_do_not_import_torch():
    code = ("import sys; from oncoflow.config import check_config, expand_pretrain; "
            "import oncoflow.models.catalog; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
