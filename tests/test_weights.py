"""Pretrained weights for offline compute nodes: what a config needs, the download_models target
(dry runs: no internet here), the error when weights are missing, and the fetch helpers on local
files (file:// URLs, a refused connection)."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest
from workflow_helpers import REPO, planned_jobs, run_snakemake, tiny_config, write_config

from oncoflow.models import weights as w


def hdbet_and_imagenet(tmp: Path) -> dict:
    config = tiny_config()
    config["preprocess"]["brain_extraction"].update(backend="hdbet", hdbet_weights=str(tmp / "weights/hdbet"))
    config["models"][0].update(init="imagenet", weights=str(tmp / "weights/resnet18.pth"))
    return config


def test_urls_are_torchvisions_and_hdbet_files_match_the_brain_module() -> None:
    import torchvision.models as tvm

    from oncoflow.preprocess.brain import HDBET_WEIGHT_FILES

    assert w.IMAGENET_URLS == {a: tvm.get_model_weights(a).DEFAULT.url for a in w.IMAGENET_URLS}
    assert w.HDBET_FILES == HDBET_WEIGHT_FILES


def test_required_weights(tmp_path: Path) -> None:
    assert w.required_weights(tiny_config()) == []
    found = {x.kind: x for x in w.required_weights(hdbet_and_imagenet(tmp_path))}
    assert found["hdbet"].url == w.HDBET_URL and found["hdbet"].path == tmp_path / "weights/hdbet"
    assert found["imagenet"].files == (tmp_path / "weights/resnet18.pth",)
    assert found["imagenet"].url.endswith("resnet18-f37072fd.pth")
    config = tiny_config()
    config["models"][0].update(architecture="resnet10_3d", init="medicalnet", weights="m.pth")
    assert w.required_weights(config)[0].url == w.MEDICALNET_URLS["resnet10_3d"]
    config["models"][0].update(init="imagenet")
    with pytest.raises(ValueError, match=r"models\[0\]: no imagenet weights for 'resnet10_3d'"):
        w.required_weights(config)


def test_missing_weights_name_the_field_and_the_target(tmp_path: Path) -> None:
    hdbet = next(x for x in w.required_weights(hdbet_and_imagenet(tmp_path)) if x.kind == "hdbet")
    with pytest.raises(w.WeightsMissing, match="hdbet_weights.*download_models"):
        hdbet.check()
    for name in w.HDBET_FILES:
        (hdbet.path / name).parent.mkdir(parents=True, exist_ok=True)
        (hdbet.path / name).write_text("x")
    assert hdbet.check() == hdbet.path and hdbet.missing() == []


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


@pytest.mark.parametrize("nested", [False, True])
def test_hdbet_zip_installs_into_the_configured_folder(tmp_path: Path, nested: bool) -> None:
    archive = tmp_path / "release.zip"
    prefix = "release_2.0.0/" if nested else ""
    with zipfile.ZipFile(archive, "w") as z:
        for name in w.HDBET_FILES:
            z.writestr(prefix + name, name)
    folder = w.install_hdbet_zip(archive, tmp_path / "weights/hdbet")
    assert all((folder / name).read_text() == name for name in w.HDBET_FILES)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("model.pth", "x")
    with pytest.raises(ValueError, match="not HD-BET"):
        w.install_hdbet_zip(tmp_path / "other.zip", tmp_path / "elsewhere")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_cohort: Path) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    shutil.copytree(tiny_cohort.parent, folder / "data" / "demo")
    return folder


def test_download_models_has_nothing_to_fetch_by_default(workdir: Path) -> None:
    write_config(workdir, tiny_config())  # deepbet (weights in its wheel), models from scratch
    result = run_snakemake(workdir, "-n", "--cores", "1", "download_models")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert planned_jobs(result.stdout) == {"download_models": 1}  # the target alone, a no-op


def test_missing_weights_stop_the_run_before_any_job(workdir: Path) -> None:
    write_config(workdir, hdbet_and_imagenet(workdir))
    result = run_snakemake(workdir, "-n", "--cores", "1")
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert "weights missing" in message and "snakemake download_models" in message, message[-3000:]
    assert "Job stats" not in message


def test_download_models_fetches_what_the_run_lacks_and_nothing_else(workdir: Path) -> None:
    config = hdbet_and_imagenet(workdir)
    write_config(workdir, config)
    result = run_snakemake(workdir, "-n", "--cores", "1", "download_models")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert planned_jobs(result.stdout) == {"fetch_hdbet_weights": 1, "fetch_pretrained_weights": 1,
                                           "download_models": 1}
    # local rules: under --profile slurm they run where Snakemake runs (a login node), never on a
    # compute node
    rules = (REPO / "workflow/rules/models.smk").read_text().split("\nrule ")[1:]
    assert len(rules) == 2 and all("    localrule: True\n" in rule for rule in rules)

    # Once the weights are there, download_models fetches nothing, and the run reads them without
    # any fetch job (compute rules never download).
    for x in w.required_weights(config):
        for f in x.files:
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"placeholder")
    again = run_snakemake(workdir, "-n", "--cores", "1", "download_models")
    assert again.returncode == 0 and not {"fetch_hdbet_weights", "fetch_pretrained_weights"} & set(
        planned_jobs(again.stdout)), again.stdout[-3000:]
    run = run_snakemake(workdir, "-n", "--cores", "1")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    jobs = planned_jobs(run.stdout)
    assert jobs.get("extract_brain") == 14 and not any(rule.startswith("fetch_") for rule in jobs)
