"""oncoflow.models.zoo: every architecture builds and trains on tiny inputs; pretrained weights come
from local files in torchvision's (2D) and MedicalNet's (3D) formats, made here (nothing is
downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers_models import tiny_input
import torchvision
from monai.networks.nets.resnet import ResNet
from torch import nn

from oncoflow.models.catalog import ENCODERS_3D
from oncoflow.models.zoo import ARCH_2D, ARCH_3D, ARCHITECTURES, MEDICALNET as PUBLISHED, build_model, spatial_dims

torch.set_num_threads(1)  # shared CPU: one thread is much faster than two oversubscribed ones


def first_conv(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)))


def perturbed(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """A state dict that no fresh initialisation reproduces (buffers included), so a test can see
    whether the file was really loaded."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in state.items():
        if v.is_floating_point():
            draw = torch.rand if "running_var" in k else torch.randn  # variances stay positive
            noise = draw(v.shape, generator=g)
            v = v + 0.1 * noise
        out[k] = v.clone()
    return out


def test_architecture_lists():
    assert set(ARCHITECTURES) == set(ARCH_2D) | set(ARCH_3D)
    assert all(spatial_dims(a) == 2 for a in ARCH_2D) and all(spatial_dims(a) == 3 for a in ARCH_3D)
    with pytest.raises(ValueError, match="unknown architecture"):
        spatial_dims("resnet34")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_forward_backward(architecture, channels):
    torch.manual_seed(0)
    model = build_model(architecture, channels)
    # a brain-extraction encoder reads each modality on its own: one input channel, shared
    first = next(model.encoder.parameters()) if architecture in ENCODERS_3D else first_conv(model).weight
    assert first.shape[1] == (1 if architecture in ENCODERS_3D else channels)
    model.train()
    x = tiny_input(architecture, channels)
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1)
    assert torch.isfinite(out).all()
    nn.functional.binary_cross_entropy_with_logits(out.squeeze(1), torch.tensor([0.0, 1.0])).backward()
    grad = first.grad
    assert grad is not None and grad.abs().sum() > 0, "no gradient reaches the (adapted) first conv"
    # the single-logit head is trainable too
    head = [p for p in model.parameters() if p.shape[:1] == (1,) and p.dim() == 2]
    assert head and head[-1].grad is not None


# ---------------------------------------------------------------------------------- ImageNet (2D)


@pytest.fixture(scope="module")
def imagenet_weights(tmp_path_factory) -> dict[str, Path]:
    """torchvision state dicts as torchvision publishes them (googlenet with its aux heads)."""
    root = tmp_path_factory.mktemp("imagenet")
    out = {}
    for i, arch in enumerate(("resnet18", "googlenet")):
        torch.manual_seed(100 + i)
        kwargs = {"init_weights": True} if arch == "googlenet" else {}
        state = perturbed(getattr(torchvision.models, arch)(weights=None, **kwargs).state_dict(), 200 + i)
        if arch == "googlenet":
            assert any(k.startswith("aux1.") for k in state)
        torch.save(state, root / f"{arch}.pth")
        out[arch] = root / f"{arch}.pth"
    return out


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("architecture", ["resnet18", "googlenet"])
def test_imagenet_init_adapts_first_conv(imagenet_weights, architecture, channels):
    saved = torch.load(imagenet_weights[architecture], weights_only=True)
    torch.manual_seed(7)
    model = build_model(architecture, channels, init="imagenet", weights=imagenet_weights[architecture])
    state = model.state_dict()
    conv_key = "conv1.weight" if architecture == "resnet18" else "conv1.conv.weight"
    rgb = saved[conv_key]
    assert rgb.shape[1] == 3
    expected = rgb if channels == 3 else rgb.mean(dim=1, keepdim=True).repeat(1, channels, 1, 1)
    assert state[conv_key].shape == (rgb.shape[0], channels, *rgb.shape[2:])
    torch.testing.assert_close(state[conv_key], expected, rtol=0, atol=1e-7)
    if channels != 3:  # every channel is the same grey filter
        torch.testing.assert_close(state[conv_key][:, 0], state[conv_key][:, -1], rtol=0, atol=0)
    compared = 0
    for k, v in state.items():
        if k == conv_key or k.startswith("fc."):
            continue
        assert torch.equal(v, saved[k]), k
        compared += 1
    assert compared > 50
    assert state["fc.weight"].shape == (1, saved["fc.weight"].shape[1])  # new single-logit head
    assert not any(k.startswith("aux") for k in state)
    x = tiny_input(architecture, channels)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 1)


def test_imagenet_grey_filter_response(imagenet_weights):
    """The point of averaging: a grey image through the 1-channel model gives the same first-layer
    response as the same grey image copied into R, G and B through the original RGB conv."""
    rgb_model = torchvision.models.resnet18(weights=None)
    rgb_model.load_state_dict(torch.load(imagenet_weights["resnet18"], weights_only=True))
    grey_model = build_model("resnet18", 1, init="imagenet", weights=imagenet_weights["resnet18"])
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(grey_model.conv1(x), rgb_model.conv1(x.repeat(1, 3, 1, 1)) / 3)


def test_imagenet_wrong_file_raises(imagenet_weights):
    with pytest.raises(RuntimeError, match="state_dict"):
        build_model("resnet50", 1, init="imagenet", weights=imagenet_weights["resnet18"])


# -------------------------------------------------------------------------------- MedicalNet (3D)

# MedicalNet (github.com/Tencent/MedicalNet, models/resnet.py and its README) publishes
# resnet_10.pth with shortcut B (1x1 conv + BN, conv without bias) and resnet_18.pth with
# shortcut A (zero-padded identity, no parameters); files are {"state_dict": ...} saved from a
# DataParallel model, hence "module." in every key, and hold the backbone only.
MEDICALNET = {"resnet10_3d": ([1, 1, 1, 1], "B"), "resnet18_3d": ([2, 2, 2, 2], "A")}


def write_medicalnet(path: Path, architecture: str, seed: int) -> dict[str, torch.Tensor]:
    layers, shortcut = MEDICALNET[architecture]
    torch.manual_seed(seed)
    net = ResNet("basic", layers, [64, 128, 256, 512], spatial_dims=3, n_input_channels=1,
                 shortcut_type=shortcut, bias_downsample=False, feed_forward=False)
    state = perturbed(net.state_dict(), seed + 1)
    keys = set(state)
    assert not any(k.startswith("fc.") for k in keys)
    assert not any(k.endswith("downsample.0.bias") for k in keys)
    if shortcut == "B":
        assert "layer2.0.downsample.0.weight" in keys
    else:
        assert not any("downsample" in k for k in keys)
    torch.save({"epoch": 200, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return state


@pytest.fixture(scope="module")
def medicalnet_files(tmp_path_factory) -> dict[str, tuple[Path, dict[str, torch.Tensor]]]:
    root = tmp_path_factory.mktemp("medicalnet")
    return {a: (root / f"{a}.pth", write_medicalnet(root / f"{a}.pth", a, seed=11 + i))
            for i, a in enumerate(PUBLISHED)}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("architecture", PUBLISHED)
def test_medicalnet_init(medicalnet_files, architecture, channels):
    path, saved = medicalnet_files[architecture]
    torch.manual_seed(5)
    model = build_model(architecture, channels, init="medicalnet", weights=path)
    state = model.state_dict()
    assert state["conv1.weight"].shape == (64, channels, 7, 7, 7)
    torch.testing.assert_close(state["conv1.weight"], saved["conv1.weight"].repeat(1, channels, 1, 1, 1),
                               rtol=0, atol=1e-7)
    for k, v in saved.items():
        if k != "conv1.weight":
            assert torch.equal(state[k], v), k
    assert set(state) - set(saved) == {"fc.weight", "fc.bias"}


def test_medicalnet_wrong_architecture_raises(medicalnet_files, tmp_path):
    with pytest.raises(ValueError, match="MedicalNet publishes no weights for vgg16_3d"):
        build_model("vgg16_3d", 1, init="medicalnet", weights=medicalnet_files["resnet10_3d"][0])
    with pytest.raises(ValueError, match="is not a MedicalNet resnet10_3d checkpoint"):
        build_model("resnet10_3d", 1, init="medicalnet", weights=medicalnet_files["resnet18_3d"][0])
    with pytest.raises(ValueError, match="is not a MedicalNet resnet18_3d checkpoint"):
        build_model("resnet18_3d", 1, init="medicalnet", weights=medicalnet_files["resnet10_3d"][0])
    # a 2D torchvision file: same key names, other shapes
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "tv.pth")
    with pytest.raises(ValueError, match="is not a MedicalNet resnet10_3d checkpoint"):
        build_model("resnet10_3d", 1, init="medicalnet", weights=tmp_path / "tv.pth")


# ----------------------------------------------------------------------------- init bookkeeping


@pytest.mark.parametrize("architecture,init", [("resnet18", "imagenet"), ("resnet10_3d", "medicalnet"),
                                               ("resnet18", "checkpoint"), ("resnet18_3d", "checkpoint")])
def test_init_without_weights_raises(architecture, init):
    with pytest.raises(ValueError, match="needs a local weights file"):
        build_model(architecture, 1, init=init)


def test_init_that_does_not_apply_raises(tmp_path):
    dummy = tmp_path / "w.pth"
    torch.save({}, dummy)
    with pytest.raises(ValueError, match="does not apply"):
        build_model("resnet18", 1, init="medicalnet", weights=dummy)
    with pytest.raises(ValueError, match="does not apply"):
        build_model("resnet10_3d", 1, init="imagenet", weights=dummy)
    with pytest.raises(ValueError, match="unknown init"):
        build_model("resnet18", 1, init="imagent", weights=dummy)


@pytest.mark.parametrize("architecture", ["resnet18", "resnet10_3d"])
def test_checkpoint_init_roundtrip(tmp_path, architecture):
    torch.manual_seed(3)
    trained = build_model(architecture, 2)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.01)
    torch.save({"model": trained.state_dict(), "epoch": 4}, tmp_path / "checkpoint.pt")
    torch.manual_seed(4)
    fresh = build_model(architecture, 2)
    loaded = build_model(architecture, 2, init="checkpoint", weights=tmp_path / "checkpoint.pt")
    x = tiny_input(architecture, 2)
    for m in (trained, fresh, loaded):
        m.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x))
        assert not torch.allclose(fresh(x), trained(x))
