"""Where a CNN fold model looked: Grad-CAM and occlusion sensitivity (both ``monai.visualize``).

Both explain the class the model predicted for each input (the positive logit for a positive
prediction, its negative otherwise) and keep the evidence *for* it (Grad-CAM's ReLU; occlusion:
how far hiding a patch lowers that class's logit, negative changes clipped to 0), so a map is a
non-negative mass over the input grid. MONAI's Grad-CAM averages the gradients over every spatial
axis (3D included: ``grad.view(b, c, -1).mean(2)``), unlike ClinicaDL's, which pools two axes only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from oncoflow.models.catalog import ARCHITECTURES

METHODS = ("gradcam", "occlusion")

#: Grad-CAM's layer per architecture: the last convolutional stage, whose spatial map the head pools.
TARGET_LAYERS: dict[str, str] = {
    "alexnet": "features.11",  # ReLU after the last convolution
    "googlenet": "inception5b",
    "resnet18": "layer4",
    "resnet50": "layer4",
    "vgg16": "features.29",  # ReLU after the last convolution
    "resnet10_3d": "layer4",
    "resnet18_3d": "layer4",
    "vgg16_3d": "features.42",  # ReLU after the last convolution
    "msresnet10_3d": "branches.0.layer4",  # the full-resolution branch
    "hdbet_encoder_3d": "encoder",
    "deepbet_encoder_3d": "encoder",
}
assert set(TARGET_LAYERS) == set(ARCHITECTURES), "every architecture needs its Grad-CAM layer"


class PredictedClass(nn.Module):
    """A one-logit classifier as two class scores (-logit, logit): argmax is the predicted class."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = self.net(x).float()
        return torch.cat([-logit, logit], dim=1)


def target_layer(architecture: str) -> str:
    """Grad-CAM's layer inside :class:`PredictedClass` (co-training models keep the classifier's names)."""
    return "net." + TARGET_LAYERS[architecture]


def gradcam(model: nn.Module, architecture: str, x: np.ndarray, batch: int = 8) -> np.ndarray:
    """Grad-CAM maps (n, *spatial) of ``x`` (n, channels, *spatial), upsampled to the input grid."""
    from monai.visualize import GradCAM

    wrapped = PredictedClass(model).eval()
    cam = GradCAM(nn_module=wrapped, target_layers=target_layer(architecture), postprocessing=lambda m: m)
    out = []
    for start in range(0, len(x), batch):
        xb = torch.from_numpy(x[start : start + batch])
        maps = cam(xb).detach()
        if maps.shape[0] != len(xb):  # an encoder run on each channel apart: sum the channels' maps
            maps = maps.reshape(len(xb), -1, *maps.shape[2:])
        out.append(maps.sum(1).numpy())
    return np.concatenate(out).astype(np.float32)


def occlusion(model: nn.Module, x: np.ndarray, batch: int = 16) -> np.ndarray:
    """Occlusion maps (n, *spatial): the predicted class's logit minus its logit with a Gaussian
    patch (a quarter of each axis) hidden around each voxel, clipped at 0. Patches overlap by half
    in 2D (49 forward passes a slice); in 3D they tile the volume (64 passes: with half overlap, 343
    passes cost ~100 s a patient on one CPU core)."""
    from monai.visualize import OcclusionSensitivity

    wrapped = PredictedClass(model).eval()
    spatial = x.shape[2:]
    mask = [max(s // 4, 1) for s in spatial]
    occ = OcclusionSensitivity(wrapped, mask_size=mask, n_batch=batch, verbose=False, overlap=0.5 if len(spatial) == 2 else 0.0,
                               activate=False)
    out = []
    with torch.no_grad():
        for xi in x:
            xt = torch.from_numpy(xi[None])
            scores = wrapped(xt)[0]
            cls = int(scores.argmax())
            occ_map, _ = occ(xt)  # the predicted class's logit with each patch hidden
            drop = scores[cls] - torch.as_tensor(occ_map)[0, cls]
            out.append(drop.clamp(min=0).numpy())
    return np.stack(out).astype(np.float32)


def explain(model: nn.Module, architecture: str, x: np.ndarray, method: str) -> np.ndarray:
    """Non-negative maps (n, *spatial) of ``method`` (one of :data:`METHODS`) on the model's input grid."""
    if method == "gradcam":
        return gradcam(model, architecture, x)
    if method == "occlusion":
        return occlusion(model, x)
    raise ValueError(f"unknown explanation method {method!r}; choose from {METHODS}")
