"""Reconstruction losses: `mse + w * L` or `L` alone, with L a metric made into a loss.

One convention turns every metric into a loss that is >= 0, lower is better, and 0 on
identical images (see `metric.py`):

    L = best - metric   for similarities (PSNR, SSIM, MS-SSIM, HaarPSI; best = their
                        value on identical images: 1, or 10*log10(1/eps) dB for PSNR)
    L = metric - best   for distances (GMSD, MS-GMSD, LPIPS; best 0)

A loss is named by a built-in name (`builtin.py`: the paper's six piqa metrics and LPIPS),
by a name an installed package registers, or as `module:factory` (`plugins.py`).
Metrics see images mapped from the model's [-1, 1] to their input range ([0, 1] for all
built-ins); the MSE term is the reference's `F.mse_loss` in [-1, 1], so `mse + w * L` with
w -> 0 is exactly the reference VQ-VAE.

A joint loss names its parts joined by "+" (`ssim+gmsd`): `mse + w1 * ssim + w2 * gmsd`, one
weight per part (`LossConfig.weights`, in the name's order), always with MSE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..vocab import is_joint, loss_parts, run_label
from . import lpips
from .builtin import LOSSES, METRICS, NETWORK_METRICS, PERCEPTUAL_LOSSES, ms_gmsd, ms_ssim
from .metric import Metric, check_convention
from .plugins import ENTRY_POINT_GROUP, load_plugin, registered_names

__all__ = ["ENTRY_POINT_GROUP", "LOSSES", "METRICS", "PERCEPTUAL_LOSSES", "LossConfig", "Metric",
           "ReconstructionLoss", "check_convention", "find_metric", "find_metrics", "ms_gmsd", "ms_ssim"]


def valid_names() -> str:
    """The loss names a user may give, for error messages."""
    return ", ".join([*PERCEPTUAL_LOSSES, *NETWORK_METRICS, *registered_names()]) + " or module:factory"


def find_metric(name: str) -> Metric:
    """The Metric of a perceptual loss name: built in (LPIPS: its weights found), registered by
    an installed package, or `module:factory`. UserError (one line) for anything else."""
    if name in METRICS:
        return METRICS[name]
    if name in NETWORK_METRICS:
        lpips.weight_files()  # missing weights stop here, before any training
        return NETWORK_METRICS[name]
    metric = load_plugin(name)
    if metric is None:
        raise UserError(f"unknown loss {name!r}; valid: {valid_names()}")
    return metric


def find_metrics(name: str) -> list[Metric]:
    """The Metrics of a loss name: one, or a joint loss's parts ("ssim+gmsd"): distinct
    perceptual losses, each as `find_metric` finds it. UserError (one line) otherwise."""
    if not is_joint(name):
        return [find_metric(name)]
    parts = loss_parts(name)
    if any(not p for p in parts) or "mse" in parts or len(set(parts)) != len(parts):
        raise UserError(f"joint loss {name!r}: give distinct perceptual losses joined by '+', "
                        f"e.g. ssim+gmsd (mse is always in the sum); valid: {valid_names()}")
    return [find_metric(p) for p in parts]


def _positive(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and v > 0 and math.isfinite(v)


@dataclass
class LossConfig:
    """`mse` alone, `mse + weight * name` (with_mse), or `name` alone (no MSE); a joint
    name ("ssim+gmsd"): `mse + weights[0] * ssim + weights[1] * gmsd` (weights None: `weight`
    for every part)."""

    name: str = "mse"
    weight: float = 1.0
    with_mse: bool = True
    weights: list[float] | None = None  # a joint loss's weights, one per part; None otherwise

    def __post_init__(self):
        if self.name != "mse":
            find_metrics(self.name)  # unknown names; imports and checks a plugin; LPIPS's weights
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise UserError(
                f"loss weight must be a positive number, got {self.weight}; "
                f"use --weight > 0, or --no-mse to train on {self.name} alone"
            )
        if self.name == "mse" and not self.with_mse:
            raise UserError("--no-mse needs a perceptual loss; valid: " + valid_names())
        if is_joint(self.name):
            self._check_weights()
        elif self.weights is not None:
            raise UserError(f"{len(self.weights)} weights given for the single loss {self.name}; "
                            f"give one --weight W (W1,W2 is for a joint loss such as ssim+gmsd)")

    def _check_weights(self) -> None:
        parts = loss_parts(self.name)
        if not self.with_mse:
            raise UserError(f"--no-mse: the joint loss {self.name} always trains with MSE "
                            f"(mse + w1*{parts[0]} + w2*{parts[1]}); drop --no-mse")
        if self.weights is None:
            self.weights = [self.weight] * len(parts)
        self.weights = list(self.weights)
        if len(self.weights) != len(parts) or not all(_positive(w) for w in self.weights):
            raise UserError(f"the joint loss {self.name} needs {len(parts)} positive weights, one per "
                            f"part, got {self.weights}; use --weight " + ",".join(["W"] * len(parts)))
        self.weights = [float(w) for w in self.weights]

    @property
    def label(self) -> str:
        return run_label(self.name, self.with_mse, tuple(self.weights) if self.weights else self.weight)


class ReconstructionLoss(nn.Module):
    """Maps (x_tilde, x) in [-1, 1] to the run's scalar reconstruction loss.

    `forward` returns (total, mse, perceptual); perceptual is None for plain MSE, and mse is
    computed (detached) even for "no MSE" runs so every run logs it. `reduction="none"`
    makes `perceptual` per image (N,), as fused multi-weight training needs.
    """

    def __init__(self, cfg: LossConfig, image_size: int = 32, reduction: str = "mean"):
        super().__init__()
        self.cfg, self.reduction = cfg, reduction
        self.joint = is_joint(cfg.name)
        if self.joint:  # mse + sum_i w_i * L_i: perceptual() returns the weighted sum
            self.metric, self.module = None, None
            self.metrics = find_metrics(cfg.name)
            self.modules_ = [m.build(image_size) for m in self.metrics]
            for i, module in enumerate(self.modules_):
                setattr(self, f"part{i}", module)  # registered (moved by .to()) if a Module
            return
        self.metric = None if cfg.name == "mse" else find_metric(cfg.name)
        self.module = self.metric.build(image_size) if self.metric else None

    def perceptual(self, x_tilde: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The loss L in fp32, per image or its mean over the batch; for a joint loss the
        weighted sum of its parts, sum_i w_i * L_i."""
        if self.joint:
            per_image = sum(w * m.as_loss(module(m.to_input(x_tilde), m.to_input(x)))
                            for w, m, module in zip(self.cfg.weights, self.metrics, self.modules_))
        else:
            m = self.metric
            per_image = m.as_loss(self.module(m.to_input(x_tilde), m.to_input(x)))
        return per_image if self.reduction == "none" else per_image.mean()

    def forward(self, x_tilde: torch.Tensor, x: torch.Tensor):
        mse = F.mse_loss(x_tilde.float(), x.float())
        if self.module is None and not self.joint:
            return mse, mse, None
        perceptual = self.perceptual(x_tilde, x)
        if self.joint:  # the weights are inside perceptual
            return mse + perceptual, mse, perceptual
        if self.cfg.with_mse:
            return mse + self.cfg.weight * perceptual, mse, perceptual
        return perceptual, mse.detach(), perceptual
