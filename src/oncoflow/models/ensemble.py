"""The network a train_model checkpoint holds: one classifier, or the inner ensemble of nested
selection (``train.nested_model: ensemble``, oncoflow.train.loop).

An ensemble's logit is the mean of its members' logits. Its members are the inner models whose
out-of-fold scores fitted the fold's Platt map (a + b * logit, linear in the logit), so mapping the
mean logit is the mean of each member's mapped logit: the map is applied on the scale it was fitted
on by construction. A model refitted on all the fold's patients is a model the map never saw.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from oncoflow.models.zoo import build_model


class InnerEnsemble(nn.Module):
    """Members with one logit each; the forward pass returns the mean logit."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an inner ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


def members(model: nn.Module) -> list[nn.Module]:
    """The classifiers a fold model consists of (itself when it is not an ensemble)."""
    return list(model.members) if isinstance(model, InnerEnsemble) else [model]


def ensemble_size(model: nn.Module) -> int:
    """Members of an inner ensemble; 0 for one classifier (fold_network's ``size``)."""
    return len(model.members) if isinstance(model, InnerEnsemble) else 0


def fold_network(architecture: str, in_channels: int, *, segmentation: bool = False, size: int = 0) -> nn.Module:
    """The untrained network of a fold model: one classifier, or an ensemble of ``size`` (> 0)."""
    if not size:
        return build_model(architecture, in_channels, segmentation=segmentation)
    return InnerEnsemble([build_model(architecture, in_channels, segmentation=segmentation) for _ in range(size)])


def network_from_checkpoint(ckpt: dict[str, Any], where: str) -> nn.Module:
    """The trained network of a train_model checkpoint (``where`` names it in errors), in eval mode."""
    missing = [k for k in ("model", "architecture", "modalities") if k not in ckpt]
    if missing:
        raise ValueError(f"{where}: not a train_model checkpoint (no {', '.join(missing)})")
    model = fold_network(ckpt["architecture"], len(ckpt["modalities"]),
                         segmentation=bool(ckpt.get("cotrain_segmentation")), size=int(ckpt.get("ensemble", 0)))
    model.load_state_dict(ckpt["model"])
    return model.eval()
