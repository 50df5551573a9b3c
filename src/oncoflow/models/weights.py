"""Pretrained weights a config needs: where each comes from, whether it is there, and fetching it.

Compute nodes have no internet, so rules only ever read weights from local paths named in the
config. `snakemake download_models`, run on a login node (the fetch rules are local rules), fetches
what is missing beforehand; a run that finds weights missing stops before any job and says so.

Brain extraction needs nothing here: HD-BET's and deepbet's networks ship inside their wheels.
Sources:
- ImageNet (``models[].init: imagenet``, a file): torchvision's DEFAULT weights of the architecture
  (state dict; the file name carries the first hex digits of its SHA-256).
- MedicalNet (``models[].init: medicalnet``, a file): Tencent's 23-dataset weights from their
  Hugging Face repositories (the files MONAI's ``get_pretrained_resnet_medicalnet`` fetches).
The same two for ``pretrain[].init`` (for the architecture of each model using that pretraining).
``models[].init: checkpoint`` / ``pretrained`` read checkpoints that runs make: never downloaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# torchvision 0.28 `get_model_weights(arch).DEFAULT.url` (tests check it).
IMAGENET_URLS = {
    "alexnet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "googlenet": "https://download.pytorch.org/models/googlenet-1378be20.pth",
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
}
MEDICALNET_URLS = {
    "resnet10_3d": "https://huggingface.co/TencentMedicalNet/MedicalNet-Resnet10/resolve/main/resnet_10_23dataset.pth",
    "resnet18_3d": "https://huggingface.co/TencentMedicalNet/MedicalNet-Resnet18/resolve/main/resnet_18_23dataset.pth",
}
DOWNLOAD_HINT = ("fetch it on a machine with internet (a login node) with `snakemake download_models` "
                 "(same --configfile), or put the file there yourself")


class WeightsMissing(FileNotFoundError):
    pass


@dataclass(frozen=True)
class Weights:
    kind: str          # imagenet or medicalnet
    field: str         # the config field that names the location
    url: str
    path: Path         # the weights file
    files: tuple[Path, ...]  # what must exist

    def missing(self) -> list[Path]:
        return [f for f in self.files if not f.is_file()]

    def check(self) -> Path:
        """The location, or WeightsMissing naming the config field and how to fetch it."""
        missing = self.missing()
        if missing:
            what = ", ".join(str(f) for f in missing)
            raise WeightsMissing(f"config: {self.field}: {self.kind} weights missing ({what}); "
                                 f"{DOWNLOAD_HINT}. Source: {self.url}")
        return self.path


def required_weights(config: dict[str, Any]) -> list[Weights]:
    """Every pretrained-weights location this config reads, once each."""
    found: dict[Path, Weights] = {}
    for i, entry in enumerate(config.get("models", [])):
        init, arch = entry.get("init", "scratch"), entry.get("architecture")
        urls = {"imagenet": IMAGENET_URLS, "medicalnet": MEDICALNET_URLS}.get(init)
        if urls is None or not entry.get("weights"):
            continue  # scratch, or an oncoflow checkpoint (made by a run, not downloaded)
        if arch not in urls:
            raise ValueError(f"config: models[{i}]: no {init} weights for {arch!r} "
                             f"(available for {', '.join(urls)})")
        path = Path(entry["weights"])
        if path in found and found[path].url != urls[arch]:
            raise ValueError(f"config: models[{i}].weights: {path} is also used for other weights")
        found[path] = Weights(init, f"models[{i}].weights", urls[arch], path, (path,))
    # A pretrain job may itself start from ImageNet / MedicalNet weights: those of the architecture
    # of each model that names it (models[].init: pretrained).
    users: dict[str, set[str]] = {}
    for entry in config.get("models", []):
        if entry.get("init") == "pretrained" and entry.get("pretrained"):
            users.setdefault(entry["pretrained"], set()).add(entry.get("architecture"))
    for k, job in enumerate(config.get("pretrain") or []):
        init = job.get("init", "scratch")
        urls = {"imagenet": IMAGENET_URLS, "medicalnet": MEDICALNET_URLS}.get(init)
        if urls is None or not job.get("weights"):
            continue
        path = Path(job["weights"])
        for arch in sorted(users.get(job.get("name"), ())):
            if arch not in urls:
                raise ValueError(f"config: pretrain[{k}]: no {init} weights for {arch!r}, a model "
                                 f"that starts from it (available for {', '.join(urls)})")
            if path in found and found[path].url != urls[arch]:
                raise ValueError(f"config: pretrain[{k}].weights: {path} is also used for other weights")
            found[path] = Weights(init, f"pretrain[{k}].weights", urls[arch], path, (path,))
    return list(found.values())


def check_weights(config: dict[str, Any], kinds: tuple[str, ...] | None = None) -> None:
    """Raise WeightsMissing for the first required weights (of these kinds) that are not there."""
    for w in required_weights(config):
        if kinds is None or w.kind in kinds:
            w.check()


def _hash_prefix(url: str) -> str | None:
    """torchvision-style file names end in -<first hex digits of the SHA-256>.pth."""
    match = re.search(r"-([0-9a-f]{8,})\.pth$", url.split("?")[0])
    return match.group(1) if match else None


def download(url: str, dest: Path, *, timeout: float = 60.0) -> Path:
    """Stream ``url`` to ``dest`` via a temporary file in the same folder (a failed or interrupted
    download leaves nothing at ``dest``); checks torchvision's hash prefix when the name has one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        except OSError as exc:  # URLError, timeouts, refused connections
            raise ConnectionError(f"could not download {url}: {exc}. This needs internet: run "
                                  "`snakemake download_models` on a login node, not on a compute "
                                  f"node, or put the file at {dest} yourself") from exc
        prefix = _hash_prefix(url)
        if prefix and not digest.hexdigest().startswith(prefix):
            raise ValueError(f"{url}: SHA-256 {digest.hexdigest()} does not start with {prefix}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def fetch(weights: Weights) -> list[Path]:
    """Fetch one entry of required_weights (skipped when already complete); returns its files."""
    if not weights.missing():
        return list(weights.files)
    download(weights.url, weights.path)
    weights.check()
    return list(weights.files)
