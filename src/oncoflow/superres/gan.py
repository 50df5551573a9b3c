"""A small 3D GAN for x2 super-resolution along one axis, trained on the cohort's own volumes.

Generator: residual learning on top of trilinear interpolation. Three-dimensional convolutions read
the low-resolution patch (the upsampled axis last), residual blocks refine the features, a learned
transposed convolution along that axis doubles it (n -> 2n - 1 slices, see degrade) and a last
convolution gives a correction added to the interpolated volume; source slices are then put back
unchanged (data consistency), so only the new slices are synthesised. With a zero correction the
generator *is* linear interpolation: training starts from the baseline and improves on it.

Discriminator: a 3D patch discriminator (strided convolutions, a logit per patch region) telling
true high-resolution patches from generated ones. Loss of the generator: L1 + ``adv_weight`` x
adversarial (non-saturating BCE), adversarial part after an L1-only warm-up (SRGAN practice).

Intensities are scaled per volume by their 99th percentile before the network and back after.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from oncoflow.superres.degrade import SuperResError, degrade
from oncoflow.train.kernels import use_cpu_kernels

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class GanConfig:
    channels: int = 16
    blocks: int = 3
    epochs: int = 20
    steps_per_epoch: int = 25
    batch_size: int = 4
    patch_size: int = 48        # in-plane patch edge (voxels)
    patch_slices: int = 3       # low-resolution slices per patch along the upsampled axis
    lr: float = 1e-3
    adv_weight: float = 1e-3
    warmup_fraction: float = 0.3
    seed: int = 42


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv3d(c, c, 3, padding=1, padding_mode="replicate"), nn.LeakyReLU(0.2),
                                  nn.Conv3d(c, c, 3, padding=1, padding_mode="replicate"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """(B, 1, X, Y, n) -> (B, 1, X, Y, 2n - 1)."""

    def __init__(self, channels: int = 16, blocks: int = 3) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv3d(1, channels, 3, padding=1, padding_mode="replicate"), nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        # learned x2 upsampling along the last axis: n -> 2n - 1
        self.up = nn.ConvTranspose3d(channels, channels, kernel_size=(1, 1, 3), stride=(1, 1, 2), padding=(0, 0, 1))
        self.tail = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv3d(channels, 1, 3, padding=1, padding_mode="replicate"))
        nn.init.zeros_(self.tail[1].weight)  # starts as exactly linear interpolation
        nn.init.zeros_(self.tail[1].bias)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        n = low.shape[-1]
        base = F.interpolate(low, size=(*low.shape[2:4], 2 * n - 1), mode="trilinear", align_corners=True)
        feat = self.head(low)
        out = base + self.tail(self.up(feat + self.body(feat)))
        out[..., ::2] = low  # source slices unchanged
        return out


class Discriminator(nn.Module):
    """(B, 1, X, Y, d) -> patch logits."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv3d(1, c, 3, stride=(2, 2, 1), padding=1), nn.LeakyReLU(0.2),
            nn.Conv3d(c, 2 * c, 3, stride=(2, 2, 1), padding=1), nn.LeakyReLU(0.2),
            nn.Conv3d(2 * c, 2 * c, 3, stride=(2, 2, 1), padding=1), nn.LeakyReLU(0.2),
            nn.Conv3d(2 * c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def scale_of(volume: np.ndarray) -> float:
    positive = volume[volume > 0]
    scale = float(np.percentile(positive, 99)) if positive.size else 0.0
    return scale if scale > 0 else 1.0


def _patches(volumes: list[np.ndarray], cfg: GanConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A batch of (low, truth) patches; volumes are scaled, the upsampled axis last. Patch centres
    are drawn from foreground voxels (intensity > 10% of the scale) so that background does not
    dominate."""
    p, k = cfg.patch_size, cfg.patch_slices
    depth = 2 * k - 1
    lows, truths = [], []
    while len(lows) < cfg.batch_size:
        vol = volumes[rng.integers(len(volumes))]
        x, y, n = vol.shape
        if n < depth:
            continue
        px, py = min(p, x), min(p, y)
        fg = np.argwhere(vol > 0.1)
        cx, cy, _ = fg[rng.integers(len(fg))] if len(fg) else (x // 2, y // 2, 0)
        x0 = int(np.clip(cx - px // 2, 0, x - px))
        y0 = int(np.clip(cy - py // 2, 0, y - py))
        z0 = 2 * int(rng.integers(0, (n - depth) // 2 + 1))
        hr = vol[x0:x0 + px, y0:y0 + py, z0:z0 + depth]
        low, truth = degrade(hr, 2)
        lows.append(low)
        truths.append(truth)
    return np.stack(lows)[:, None], np.stack(truths)[:, None]


def train_generator(volumes: list[np.ndarray], cfg: GanConfig, *, log=sys.stderr) -> tuple[Generator, list[dict[str, float]]]:
    """Train on high-resolution volumes (the upsampled axis last, any intensities)."""
    use_cpu_kernels()  # ONCOFLOW_CPU_KERNELS=reproducible: oneDNN off (bit-identical across CPUs)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    depth = 2 * cfg.patch_slices - 1
    scaled = [(v / scale_of(v)).astype(np.float32) for v in volumes if v.shape[2] >= depth]
    if not scaled:
        raise SuperResError(f"no training volume has {depth} slices along the upsampled axis "
                            f"(superres.patch_slices = {cfg.patch_slices})")
    gen, disc = Generator(cfg.channels, cfg.blocks), Discriminator(cfg.channels)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr / 4, betas=(0.5, 0.99))
    bce = nn.BCEWithLogitsLoss()
    warmup = int(cfg.warmup_fraction * cfg.epochs)
    history = []
    for epoch in range(cfg.epochs):
        start, sums = time.time(), {"l1": 0.0, "l1_linear": 0.0, "adv": 0.0, "disc": 0.0}
        adversarial = epoch >= warmup
        for _ in range(cfg.steps_per_epoch):
            low, truth = (torch.from_numpy(a) for a in _patches(scaled, cfg, rng))
            fake = gen(low)
            l1 = F.l1_loss(fake, truth)
            loss = l1
            if adversarial:
                logits = disc(fake)
                adv = bce(logits, torch.ones_like(logits))
                loss = l1 + cfg.adv_weight * adv
                sums["adv"] += adv.item()
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            if adversarial:
                real, gen_logits = disc(truth), disc(fake.detach())
                d_loss = bce(real, torch.ones_like(real)) + bce(gen_logits, torch.zeros_like(gen_logits))
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
                sums["disc"] += d_loss.item()
            with torch.no_grad():
                base = F.interpolate(low, size=truth.shape[2:], mode="trilinear", align_corners=True)
                sums["l1_linear"] += float(F.l1_loss(base, truth))
            sums["l1"] += l1.item()
        row = {"epoch": epoch + 1, **{k: v / cfg.steps_per_epoch for k, v in sums.items()},
               "seconds": time.time() - start}
        history.append(row)
        print(f"epoch {epoch + 1}/{cfg.epochs}: L1 {row['l1']:.5f} (linear {row['l1_linear']:.5f}) "
              f"adv {row['adv']:.4f} disc {row['disc']:.4f} ({row['seconds']:.1f} s)", file=log, flush=True)
    return gen.eval(), history


@torch.no_grad()
def upsample(gen: Generator, volume: np.ndarray, axis: int) -> np.ndarray:
    """``volume`` x2 along ``axis`` (2n - 1 slices), intensities clipped to the input's range."""
    use_cpu_kernels()
    moved = np.moveaxis(volume.astype(np.float32), axis, 2)
    scale = scale_of(moved)
    x = torch.from_numpy(np.ascontiguousarray(moved / scale))[None, None]
    out = gen(x)[0, 0].numpy() * scale
    out = np.clip(out, float(volume.min()), float(volume.max()))
    out[..., ::2] = moved  # exact source values (no rounding through the scale)
    return np.moveaxis(out, 2, axis)


def save_checkpoint(path: Path, gen: Generator, cfg: GanConfig, axes: list[str], subjects: list[str],
                    history: list[dict[str, float]]) -> None:
    torch.save({"version": CHECKPOINT_VERSION, "generator": gen.state_dict(), "config": asdict(cfg),
                "axes": list(axes), "factor": 2, "subjects": list(subjects), "history": history}, path)


def load_checkpoint(path: Path) -> tuple[Generator, dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise SuperResError(f"superres.checkpoint: {path} not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    missing = [k for k in ("generator", "config", "axes", "factor") if k not in ckpt]
    if missing:
        raise SuperResError(f"superres.checkpoint: {path} is not an oncoflow super-resolution checkpoint "
                            f"(missing {', '.join(missing)})")
    cfg = GanConfig(**ckpt["config"])
    gen = Generator(cfg.channels, cfg.blocks)
    gen.load_state_dict(ckpt["generator"])
    return gen.eval(), ckpt
