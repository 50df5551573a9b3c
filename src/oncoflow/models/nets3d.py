"""3D networks not provided by MONAI: a VGG16 and a multi-scale ResNet (one logit each)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16_3D(nn.Module):
    """VGG16 with 3D convolutions and batch norm. ``width`` scales every channel count (1.0 = the
    original 64..512); pools use ceil mode so thin crops (16 slices) survive five poolings."""

    def __init__(self, in_channels: int, width: float = 1.0, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool3d(2, ceil_mode=True))
            else:
                out = max(int(int(item) * width), 4)
                layers += [nn.Conv3d(channels, out, 3, padding=1, bias=False), nn.BatchNorm3d(out),
                           nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        hidden = max(int(512 * width), 8)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class MultiScaleResNet3D(nn.Module):
    """One ResNet branch per scale: the crop itself and the crop average-pooled by each factor
    (coarser context, fewer voxels); pooled features are concatenated before the final layer."""

    def __init__(self, in_channels: int, scales: tuple[int, ...] = (1, 2)) -> None:
        super().__init__()
        from monai.networks.nets import resnet10
        from monai.networks.nets.resnet import get_medicalnet_pretrained_resnet_args

        bias_downsample, shortcut = get_medicalnet_pretrained_resnet_args(10)
        self.scales = scales
        self.branches = nn.ModuleList()
        for _ in scales:
            branch = resnet10(spatial_dims=3, n_input_channels=in_channels, num_classes=1,
                              shortcut_type=shortcut, bias_downsample=bias_downsample, feed_forward=False)
            self.branches.append(branch)
        self.fc = nn.Linear(512 * len(scales), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for scale, branch in zip(self.scales, self.branches):
            xs = x if scale == 1 else F.avg_pool3d(x, scale, ceil_mode=True)
            feats.append(branch(xs))
        return self.fc(torch.cat(feats, dim=1))
