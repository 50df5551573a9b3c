"""Where a CNN fold model looked: Grad-CAM and occlusion sensitivity (both ``monai.visualize``).

Both explain the class the model predicted for each input (the positive logit for a positive
prediction, its negative otherwise; or a ``target`` class given for every input, e.g. the class an
ensemble of fold models reports: oncoflow.predict.maps) and keep the evidence *for* it (Grad-CAM's ReLU; occlusion:
how far hiding a patch lowers that class's logit, negative changes clipped to 0), so a map is a
non-negative mass over the input grid. MONAI's Grad-CAM averages the gradients over every spatial
axis (3D included: ``grad.view(b, c, -1).mean(2)``), unlike ClinicaDL's, which pools two axes only.
Grad-CAM's layer depends on the input's size (:func:`choose_layer`); the sanity table records it.
An inner ensemble (nested selection) is explained as a whole: occlusion on its mean logit, Grad-CAM
as the mean of its members' maps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from oncoflow.models.catalog import ARCHITECTURES
from oncoflow.models.ensemble import members

METHODS = ("gradcam", "occlusion")

#: Grad-CAM's candidate layers per architecture, deepest first: the last convolutional stage, whose
#: spatial map the head pools, then earlier stages (:func:`choose_layer` takes the deepest that
#: resolves the input). deepbet's encoder is traced (TorchScript modules take no forward hooks): its
#: output is its only layer.
GRADCAM_LAYERS: dict[str, tuple[str, ...]] = {
    "alexnet": ("features.11", "features.4", "features.1"),  # the ReLUs after convolutions 5, 2 and 1
    "googlenet": ("inception5b", "inception4e", "inception3b"),
    "resnet18": ("layer4", "layer3", "layer2"),
    "resnet50": ("layer4", "layer3", "layer2"),
    "vgg16": ("features.29", "features.22", "features.15"),  # the ReLUs ending blocks 5, 4 and 3
    "resnet10_3d": ("layer4", "layer3", "layer2"),
    "resnet18_3d": ("layer4", "layer3", "layer2"),
    "vgg16_3d": ("features.42", "features.32", "features.22"),  # the ReLUs ending blocks 5, 4 and 3
    "msresnet10_3d": ("branches.0.layer4", "branches.0.layer3", "branches.0.layer2"),  # full-resolution branch
    "hdbet_encoder_3d": ("encoder", "encoder.context4", "encoder.context3"),
    "deepbet_encoder_3d": ("encoder",),
}
assert set(GRADCAM_LAYERS) == set(ARCHITECTURES), "every architecture needs its Grad-CAM layers"

#: Fewest cells a Grad-CAM layer's activation must have along each in-plane (last two) axis. Grad-CAM
#: (Selvaraju et al., ICCV 2017) takes the last convolutional layer as the best compromise between
#: high-level semantics and spatial detail; where a small input shrinks it to 1x1 (a flat map) or 2x2
#: cells, an earlier stage trades some semantics for a map that resolves the input. 4: cells of a
#: quarter of each axis, the scale of occlusion's patch (:func:`occlusion`); ResNet's layer2 on a
#: 32-pixel crop.
MIN_CELLS = 4


@dataclass(frozen=True)
class GradcamLayer:
    """The layer Grad-CAM used (its name in the architecture) and its activation's spatial grid."""

    name: str
    grid: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.name} ({'x'.join(map(str, self.grid))} cells)"


def layer_grids(model: nn.Module, architecture: str, x: np.ndarray) -> dict[str, tuple[int, ...]]:
    """The spatial grid of each of the architecture's :data:`GRADCAM_LAYERS` on the first input of
    ``x``, deepest first (forward hooks on one sample)."""
    modules = dict(model.named_modules())
    grids: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _input: object, out: torch.Tensor) -> None:  # None: keeps the output
            grids[name] = tuple(out.shape[2:])
        return hook

    hooks = [modules[name].register_forward_hook(record(name)) for name in GRADCAM_LAYERS[architecture]]
    try:
        with torch.no_grad():
            model.eval()(torch.from_numpy(x[:1]))
    finally:
        for hook in hooks:
            hook.remove()
    return {name: grids[name] for name in GRADCAM_LAYERS[architecture]}


def choose_layer(model: nn.Module, architecture: str, x: np.ndarray) -> GradcamLayer:
    """The deepest of the architecture's :data:`GRADCAM_LAYERS` whose activation on the first input
    of ``x`` has at least :data:`MIN_CELLS` cells along each in-plane axis; the deepest when none has."""
    layers = [GradcamLayer(name, grid) for name, grid in layer_grids(model, architecture, x).items()]
    return next((layer for layer in layers if min(layer.grid[-2:]) >= MIN_CELLS), layers[0])


class PredictedClass(nn.Module):
    """A one-logit classifier as two class scores (-logit, logit): argmax is the predicted class."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = self.net(x).float()
        return torch.cat([-logit, logit], dim=1)


def gradcam(model: nn.Module, layer: str, x: np.ndarray, batch: int = 8, target: int | None = None) -> np.ndarray:
    """Grad-CAM maps (n, *spatial) of ``x`` (n, channels, *spatial) on the model's ``layer`` (see
    :func:`choose_layer`), upsampled to the input grid; ``target``: the class explained (0 negative,
    1 positive) for every input, by default each input's predicted class."""
    from monai.visualize import GradCAM

    wrapped = PredictedClass(model).eval()
    # inside PredictedClass (co-training models keep the classifier's names)
    cam = GradCAM(nn_module=wrapped, target_layers=f"net.{layer}", postprocessing=lambda m: m)
    out = np.zeros((len(x), *x.shape[2:]), np.float32)
    for start in range(0, len(x), batch):
        xb = torch.from_numpy(x[start : start + batch])
        if target is None:
            with torch.no_grad():
                classes = wrapped(xb).argmax(1).numpy()
        else:
            classes = np.full(len(xb), target)
        # one class per call: given a tensor of classes, MONAI backpropagates the sum of every input's
        # score for every class in the batch, so one positive and one negative input cancel (flat maps)
        for cls in np.unique(classes):
            rows = np.flatnonzero(classes == cls)
            maps = cam(xb[rows], class_idx=int(cls)).detach()
            if maps.shape[0] != len(rows):  # an encoder run on each channel apart: sum the channels' maps
                maps = maps.reshape(len(rows), -1, *maps.shape[2:])
            out[start + rows] = maps.sum(1).numpy()
    return out


def occlusion(model: nn.Module, x: np.ndarray, batch: int = 16, target: int | None = None) -> np.ndarray:
    """Occlusion maps (n, *spatial): the predicted (or ``target``) class's logit minus its logit with a Gaussian
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
            cls = int(scores.argmax()) if target is None else target
            occ_map, _ = occ(xt)  # the predicted class's logit with each patch hidden
            drop = scores[cls] - torch.as_tensor(occ_map)[0, cls]
            out.append(drop.clamp(min=0).numpy())
    return np.stack(out).astype(np.float32)


def explain(model: nn.Module, architecture: str, x: np.ndarray, method: str,
            target: int | None = None) -> tuple[np.ndarray, GradcamLayer | None]:
    """Non-negative maps (n, *spatial) of ``method`` (one of :data:`METHODS`) on the model's input grid,
    and Grad-CAM's layer (None for occlusion); ``target``: the class explained for every input (by
    default each input's predicted class)."""
    if method == "gradcam":  # an inner ensemble: the mean of its members' maps on the same layer
        nets = members(model)
        layer = choose_layer(nets[0], architecture, x)
        return np.mean([gradcam(net, layer.name, x, target=target) for net in nets], axis=0).astype(np.float32), layer
    if method == "occlusion":
        return occlusion(model, x, target=target), None
    raise ValueError(f"unknown explanation method {method!r}; choose from {METHODS}")
