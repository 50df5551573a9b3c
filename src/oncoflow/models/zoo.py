"""Model zoo: torchvision 2D classifiers and MONAI 3D ResNets, with a single logit output.

Pretrained weights always come from a local file (compute nodes have no internet):
torchvision's own state-dict format for 2D, MedicalNet's format for 3D ResNets.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

ARCH_2D = ("alexnet", "googlenet", "resnet18", "resnet50", "vgg16")
ARCH_3D = ("resnet10_3d", "resnet18_3d", "vgg16_3d", "msresnet10_3d")
# MedicalNet publishes weights for these (init: medicalnet).
MEDICALNET = ("resnet10_3d", "resnet18_3d")
ARCHITECTURES = ARCH_2D + ARCH_3D
INITS = ("scratch", "imagenet", "medicalnet", "checkpoint")


def spatial_dims(architecture: str) -> int:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {ARCHITECTURES}")
    return 3 if architecture in ARCH_3D else 2


def _first_conv(model: nn.Module) -> tuple[nn.Module, str]:
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            return module, name
    raise RuntimeError("model has no convolution")


def _set_module(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent = model
    *path, last = dotted.split(".")
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, last, new)


def adapt_input_channels(model: nn.Module, in_channels: int) -> None:
    """Replace the first conv for ``in_channels``; pretrained RGB filters are averaged and repeated
    so a grey MRI channel starts from the same features."""
    conv, name = _first_conv(model)
    if conv.in_channels == in_channels:
        return
    cls = type(conv)
    new = cls(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
              bias=conv.bias is not None)
    with torch.no_grad():
        mean = conv.weight.mean(dim=1, keepdim=True)
        new.weight.copy_(mean.repeat(1, in_channels, *([1] * (conv.weight.dim() - 2))))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_module(model, name, new)


def _replace_head(model: nn.Module, architecture: str) -> None:
    if architecture in ("alexnet", "vgg16"):
        last = model.classifier[-1]
        model.classifier[-1] = nn.Linear(last.in_features, 1)
    else:
        model.fc = nn.Linear(model.fc.in_features, 1)


def build_model(
    architecture: str, in_channels: int, *, init: str = "scratch", weights: Path | None = None
) -> nn.Module:
    """A binary classifier returning one logit per input. ``init`` is scratch, imagenet (2D,
    torchvision state dict at ``weights``), medicalnet (3D) or checkpoint (an oncoflow checkpoint)."""
    dims = spatial_dims(architecture)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose from {INITS}")
    if (init, dims) in (("imagenet", 3), ("medicalnet", 2)):  # would silently train from scratch
        raise ValueError(f"init {init!r} does not apply to the {dims}D {architecture}")
    if init == "medicalnet" and architecture not in MEDICALNET:
        raise ValueError(f"MedicalNet publishes no weights for {architecture}; use one of {MEDICALNET}")
    if init in ("imagenet", "medicalnet", "checkpoint") and weights is None:
        raise ValueError(f"init {init!r} needs a local weights file (models[].weights)")
    if dims == 2:
        import torchvision.models as tvm

        kwargs = {"aux_logits": False, "init_weights": True} if architecture == "googlenet" else {}
        model = getattr(tvm, architecture)(weights=None, **kwargs)
        if init == "imagenet":
            state = torch.load(weights, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("aux")}
            model.load_state_dict(state)
        adapt_input_channels(model, in_channels)
        _replace_head(model, architecture)
    elif architecture == "vgg16_3d":
        from oncoflow.models.nets3d import VGG16_3D

        model = VGG16_3D(in_channels)
    elif architecture == "msresnet10_3d":
        from oncoflow.models.nets3d import MultiScaleResNet3D

        model = MultiScaleResNet3D(in_channels)
    else:
        from monai.networks.nets import resnet10, resnet18
        from monai.networks.nets.resnet import get_medicalnet_pretrained_resnet_args

        factory, depth = {"resnet10_3d": (resnet10, 10), "resnet18_3d": (resnet18, 18)}[architecture]
        # MedicalNet's shortcut (B for ResNet-10, parameter-free A for ResNet-18) and bias-free
        # downsampling, always, so that its published weights (and our checkpoints) fit.
        bias_downsample, shortcut_type = get_medicalnet_pretrained_resnet_args(depth)
        model = factory(spatial_dims=3, n_input_channels=1, num_classes=1,
                        shortcut_type=shortcut_type, bias_downsample=bias_downsample)
        if init == "medicalnet":
            state = torch.load(weights, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state)
            state = {k.removeprefix("module."): v for k, v in state.items()}
            try:
                missing, unexpected = model.load_state_dict(state, strict=False)
            except RuntimeError as err:  # matching names, other shapes: another network
                raise ValueError(f"{weights} is not a MedicalNet {architecture} checkpoint: "
                                 f"{err}") from None
            if unexpected or [m for m in missing if not m.startswith("fc.")]:
                raise ValueError(f"{weights} is not a MedicalNet {architecture} checkpoint: "
                                 f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        adapt_input_channels(model, in_channels)
    if init == "checkpoint":
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("model", state))
    return model
