"""Model zoo: torchvision 2D classifiers and MONAI 3D ResNets, with a single logit output.

Pretrained weights always come from a local file (compute nodes have no internet):
torchvision's own state-dict format for 2D, MedicalNet's format for 3D ResNets, or an oncoflow
checkpoint: a whole model (init: checkpoint) or the backbone of one made by the workflow's
pretrain_model rule (init: pretrained; ``load_backbone``). ``segmentation=True`` adds a tumor
segmentation head (oncoflow.models.segmentation) for co-training.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from oncoflow.models.catalog import (  # noqa: F401  (re-exported: tests and callers import them here)
    ARCH_2D,
    ARCH_3D,
    ARCHITECTURES,
    ENCODERS_3D,
    INITS,
    MEDICALNET,
    SEGMENTATION,
    init_unsupported,
    spatial_dims,
)
from oncoflow.models.nets3d import MultiScaleResNet3D, VGG16_3D
from oncoflow.models.segmentation import CoTrainNet

SEG_PREFIX = "seg_head."


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
    architecture: str, in_channels: int, *, init: str = "scratch", weights: Path | None = None,
    segmentation: bool = False,
) -> nn.Module:
    """A binary classifier returning one logit per input. ``init`` is scratch, imagenet (2D,
    torchvision state dict at ``weights``), medicalnet (3D), checkpoint (a whole oncoflow
    checkpoint), pretrained (the backbone of a pretrain_model checkpoint; the classification head
    starts fresh) or hdbet / deepbet (the encoder of that installed brain-extraction network:
    architecture hdbet_encoder_3d / deepbet_encoder_3d, oncoflow.models.brainnets). ``segmentation`` adds a segmentation head (ResNet family; CoTrainNet)."""
    dims = spatial_dims(architecture)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose from {INITS}")
    if (init, dims) in (("imagenet", 3), ("medicalnet", 2)):  # would silently train from scratch
        raise ValueError(f"init {init!r} does not apply to the {dims}D {architecture}")
    reason = init_unsupported(init, architecture)
    if reason:
        raise ValueError(reason)
    if init == "medicalnet" and architecture not in MEDICALNET:
        raise ValueError(f"MedicalNet publishes no weights for {architecture}; use one of {MEDICALNET}")
    if init == "pretrained" and weights is None:
        raise ValueError("init 'pretrained' needs a local weights file: the pretrain_model "
                         "checkpoint (models[].pretrained names the pretrain job)")
    if init in ("imagenet", "medicalnet", "checkpoint") and weights is None:
        raise ValueError(f"init {init!r} needs a local weights file (models[].weights)")
    if segmentation and architecture not in SEGMENTATION:
        raise ValueError(f"{architecture!r} has no segmentation head (ResNet family: "
                         f"{', '.join(SEGMENTATION)})")
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
    elif architecture in ENCODERS_3D:
        from oncoflow.models.brainnets import EncoderClassifier

        model = EncoderClassifier(architecture, in_channels, init=init)
    elif architecture == "vgg16_3d":
        model = VGG16_3D(in_channels)
    elif architecture == "msresnet10_3d":
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
    if segmentation:
        model = CoTrainNet(model, architecture)
    if init == "checkpoint":
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = state.get("model", state)
        own = model.state_dict()
        # A co-trained checkpoint into a plain model: its segmentation head is not needed; a plain
        # one into a co-training model: the head starts fresh. Everything else must fit exactly.
        state = {k: v for k, v in state.items() if not k.startswith(SEG_PREFIX) or k in own}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if [k for k in missing if not k.startswith(SEG_PREFIX)] or unexpected:
            raise ValueError(f"{weights} does not fit this {architecture}: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
    elif init == "pretrained":
        load_backbone(model, weights, architecture)
    return model


def classifier_head(model: nn.Module) -> str:
    """State-dict prefix of the classification head: the last linear layer (``fc.`` for ResNets
    and GoogLeNet, ``classifier.6.`` for AlexNet / VGG16, ``classifier.4.`` for vgg16_3d)."""
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return linear[-1] + "."


def set_head_outputs(model: nn.Module, outputs: int) -> None:
    """Give the classification head ``outputs`` logits (a multi-class pretext task); the head is
    dropped again when the backbone is loaded into a classifier (load_backbone)."""
    head = classifier_head(model)[:-1]
    old = model.get_submodule(head)
    _set_module(model, head, nn.Linear(old.in_features, outputs))


def load_backbone(model: nn.Module, path: Path, architecture: str) -> list[str]:
    """Load a pretrain_model checkpoint into ``model``: every tensor but the classification head
    (whose pretext-task or untrained weights are dropped: it keeps its fresh initialisation); the
    segmentation head too when both have one (the same tumor-segmentation task). Returns the keys
    loaded. The checkpoint must come from the same architecture and input channels."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise ValueError(f"{path} is not an oncoflow checkpoint (no 'model' state dict)")
    if ckpt.get("architecture", architecture) != architecture:
        raise ValueError(f"{path} was pretrained for {ckpt['architecture']!r}, not {architecture!r}")
    state = ckpt["model"]
    own = model.state_dict()
    head = classifier_head(model)
    backbone = [k for k in own if not k.startswith(head) and not k.startswith(SEG_PREFIX)]
    missing = [k for k in backbone if k not in state]
    if missing:
        raise ValueError(f"{path} lacks {len(missing)} tensors of this {architecture} backbone "
                         f"(first: {missing[:3]})")
    take = backbone + [k for k in own if k.startswith(SEG_PREFIX) and k in state]
    for k in take:
        if state[k].shape != own[k].shape:
            raise ValueError(f"{path}: {k} has shape {tuple(state[k].shape)}, this model "
                             f"{tuple(own[k].shape)} (other input channels?)")
    model.load_state_dict({k: state[k] for k in take}, strict=False)
    return take
