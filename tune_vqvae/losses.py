"""Reconstruction losses: `mse + w * L` or `L` alone, with L a piqa metric.

One convention turns every piqa metric into a loss that is >= 0, lower is better, and 0
on identical images:

    L = best - metric   for similarities (PSNR, SSIM, MS-SSIM, HaarPSI; best = their
                        value on identical images: 1, or 10*log10(1/eps) dB for PSNR)
    L = metric          for distances (GMSD, MS-GMSD; 0 on identical images)

Metrics see images in [0, 1]; the MSE term is the reference's `F.mse_loss` in the
model's [-1, 1] space, so `mse + w * L` with w -> 0 is exactly the reference VQ-VAE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import piqa
import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError
from .vocab import run_label

# piqa's input checks call .item() on every forward (a host sync per step); our inputs are
# in range by construction (tanh output, uint8 data), so turn them off.
piqa.utils.set_debug(False)

MS_SSIM_WINDOW = 7  # Gaussian sigma 1.5 truncated at 2 sigma; 11 taps would not fit 8x8
MS_GMSD_KERNEL = 3  # Prewitt


def _scales_that_fit(image_size: int, window: int, max_scales: int) -> int:
    """How many dyadic scales keep the coarsest image at least `window` pixels wide."""
    scales = 1
    while scales < max_scales and image_size // 2**scales >= window:
        scales += 1
    return scales


def _first_weights(weights: torch.Tensor, scales: int) -> torch.Tensor:
    """The finest `scales` scale weights of a multi-scale metric, renormalised to sum 1."""
    w = weights[:scales].clone()
    return w / w.sum()


def ms_ssim(image_size: int, **kwargs) -> nn.Module:
    """MS-SSIM with as many of Wang et al.'s 5 scales as fit: 3 at 32x32 (32, 16, 8)."""
    scales = _scales_that_fit(image_size, MS_SSIM_WINDOW, len(piqa.MS_SSIM.WEIGHTS))
    return piqa.MS_SSIM(
        window_size=MS_SSIM_WINDOW, weights=_first_weights(piqa.MS_SSIM.WEIGHTS, scales), **kwargs
    )


def ms_gmsd(image_size: int, **kwargs) -> nn.Module:
    """MS-GMSD with as many of Zhang et al.'s 4 scales as fit: all 4 at 32x32."""
    scales = _scales_that_fit(image_size, MS_GMSD_KERNEL, len(piqa.MS_GMSD.WEIGHTS))
    return piqa.MS_GMSD(weights=_first_weights(piqa.MS_GMSD.WEIGHTS, scales), **kwargs)


PSNR_EPSILON = 1e-8  # piqa's default; PSNR of identical images is 10*log10(1/eps) = 80 dB


@dataclass(frozen=True)
class Metric:
    """A piqa metric and how it becomes a loss."""

    build: Callable[..., nn.Module]  # (image size, **piqa kwargs such as reduction) -> module
    best: float | None  # value on identical images for similarities; None for distances

    def as_loss(self, value: torch.Tensor) -> torch.Tensor:
        return value if self.best is None else self.best - value


# The registry: loss name -> how to build it. `mse` is the plain reference loss.
METRICS: dict[str, Metric] = {
    "psnr": Metric(lambda s, **kw: piqa.PSNR(epsilon=PSNR_EPSILON, **kw), 10 * math.log10(1 / PSNR_EPSILON)),
    "ssim": Metric(lambda s, **kw: piqa.SSIM(**kw), 1.0),
    "ms_ssim": Metric(ms_ssim, 1.0),
    "haarpsi": Metric(lambda s, **kw: piqa.HaarPSI(**kw), 1.0),
    "gmsd": Metric(lambda s, **kw: piqa.GMSD(**kw), None),
    "ms_gmsd": Metric(ms_gmsd, None),
}
PERCEPTUAL_LOSSES = tuple(METRICS)
LOSSES = ("mse", *PERCEPTUAL_LOSSES)


@dataclass
class LossConfig:
    """`mse` alone, `mse + weight * name` (with_mse), or `name` alone (no MSE)."""

    name: str = "mse"
    weight: float = 1.0
    with_mse: bool = True

    def __post_init__(self):
        if self.name not in LOSSES:
            raise UserError(
                f"unknown loss {self.name!r}; valid losses: {', '.join(LOSSES)}"
            )
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise UserError(
                f"loss weight must be a positive number, got {self.weight}; "
                f"use --weight > 0, or --no-mse to train on {self.name} alone"
            )
        if self.name == "mse" and not self.with_mse:
            raise UserError("--no-mse needs a perceptual loss; valid: " + ", ".join(PERCEPTUAL_LOSSES))

    @property
    def label(self) -> str:
        return run_label(self.name, self.with_mse, self.weight)


class ReconstructionLoss(nn.Module):
    """Maps (x_tilde, x) in [-1, 1] to the run's scalar reconstruction loss.

    `forward` returns (total, mse, perceptual); perceptual is None for plain MSE, and mse is
    computed (detached) even for "no MSE" runs so every run logs it. `reduction="none"`
    makes `perceptual` per image (N,), as fused multi-weight training needs.
    """

    def __init__(self, cfg: LossConfig, image_size: int = 32, reduction: str = "mean"):
        super().__init__()
        self.cfg = cfg
        self.metric = None if cfg.name == "mse" else METRICS[cfg.name]
        self.module = self.metric.build(image_size, reduction=reduction) if self.metric else None

    def perceptual(self, x_tilde: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The piqa loss L on [0, 1] images, in fp32 (SSIM variances cancel badly in bf16)."""
        a = ((x_tilde.float() + 1) / 2).clamp(0, 1)
        b = ((x.float() + 1) / 2).clamp(0, 1)
        return self.metric.as_loss(self.module(a, b))

    def forward(self, x_tilde: torch.Tensor, x: torch.Tensor):
        mse = F.mse_loss(x_tilde.float(), x.float())
        if self.module is None:
            return mse, mse, None
        perceptual = self.perceptual(x_tilde, x)
        if self.cfg.with_mse:
            return mse + self.cfg.weight * perceptual, mse, perceptual
        return perceptual, mse.detach(), perceptual
