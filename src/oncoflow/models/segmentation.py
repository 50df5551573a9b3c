"""A tumor-segmentation head on ResNet-family classifiers, for co-training (classification +
segmentation, as in the H3K27M protocol) and for segmentation pretraining.

``CoTrainNet`` adopts the classifier's own modules (its state dict is the classifier's keys plus
``seg_head.*``, so ImageNet / MedicalNet / oncoflow checkpoints load as before) and adds a head that
maps layer2, layer3 and layer4 features through 1x1 convolutions to one tumor logit per pixel
(voxel), FCN-8s style: each coarser map upsampled onto the next finer one and added, the sum
upsampled to the input size. (layer3 + layer4 alone leave a 64-pixel 2D crop at 4x4 and 2x2: too
coarse to learn a tumor outline from; layer2 adds 8x8.)
``model(x)`` is the classification logit only, shape (n, 1), exactly the classifier's forward;
``model.forward_with_segmentation(x)`` returns (logit, segmentation logits (n, 1, *x.shape[2:])).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from oncoflow.models.catalog import SEGMENTATION, spatial_dims


def _out_channels(layer: nn.Module) -> int:
    norms = [m for m in layer.modules() if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d))]
    return norms[-1].num_features


FEATURE_LAYERS = ("layer2", "layer3", "layer4")


def _trunk(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """layer2, layer3 and layer4 outputs of a torchvision (relu) or MONAI (act) ResNet, computed
    in the order of the network's own forward."""
    x = net.bn1(net.conv1(x))
    x = net.relu(x) if hasattr(net, "relu") else net.act(x)
    if not getattr(net, "no_max_pool", False):
        x = net.maxpool(x)
    f2 = net.layer2(net.layer1(x))
    f3 = net.layer3(f2)
    return [f2, f3, net.layer4(f3)]


class SegmentationHead(nn.Module):
    def __init__(self, channels: list[int], dims: int) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.scores = nn.ModuleList(conv(c, 1, 1) for c in channels)
        self.mode = "bilinear" if dims == 2 else "trilinear"

    def forward(self, feats: list[torch.Tensor], size: torch.Size) -> torch.Tensor:
        out = None
        for score, f in zip(reversed(self.scores), reversed(feats)):  # coarse to fine
            s = score(f)
            out = s if out is None else s + F.interpolate(out, size=s.shape[2:], mode=self.mode,
                                                           align_corners=False)
        return F.interpolate(out, size=size, mode=self.mode, align_corners=False)


class CoTrainNet(nn.Module):
    def __init__(self, net: nn.Module, architecture: str) -> None:
        super().__init__()
        if architecture not in SEGMENTATION:
            raise ValueError(f"{architecture!r} has no segmentation head (ResNet family: "
                             f"{', '.join(SEGMENTATION)})")
        self.architecture = architecture
        self.multiscale = architecture == "msresnet10_3d"
        for name, child in net.named_children():
            self.add_module(name, child)
        if self.multiscale:
            self.scales = tuple(net.scales)
            ref = net.branches[0]  # the full-resolution branch
        else:
            self.no_max_pool = getattr(net, "no_max_pool", False)
            ref = net
        self.seg_head = SegmentationHead([_out_channels(getattr(ref, n)) for n in FEATURE_LAYERS],
                                         spatial_dims(architecture))

    def _run(self, x: torch.Tensor, segment: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.multiscale:
            feats, seg = [], None
            for i, (scale, branch) in enumerate(zip(self.scales, self.branches)):
                xs = x if scale == 1 else F.avg_pool3d(x, scale, ceil_mode=True)
                stages = _trunk(branch, xs)
                feats.append(torch.flatten(branch.avgpool(stages[-1]), 1))
                if segment and i == 0:
                    seg = self.seg_head(stages, x.shape[2:])
            return self.fc(torch.cat(feats, dim=1)), seg
        stages = _trunk(self, x)
        logit = self.fc(torch.flatten(self.avgpool(stages[-1]), 1))
        return logit, self.seg_head(stages, x.shape[2:]) if segment else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, segment=False)[0]

    def forward_with_segmentation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logit, seg = self._run(x, segment=True)
        return logit, seg


def soft_dice(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Per-sample soft Dice of sigmoid(logits) against a 0/1 target; an empty target scores 1 only
    for an empty prediction (the smoothing term)."""
    p = torch.sigmoid(logits.float()).flatten(1)
    t = target.float().flatten(1)
    return (2 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth)


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BCE + (1 - mean soft Dice); also returns the mean soft Dice (detached) for the history."""
    dice = soft_dice(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    return bce + (1 - dice.mean()), dice.mean().detach()
