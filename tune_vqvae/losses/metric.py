"""What a loss declares (`Metric`), and the check that it keeps the project's convention.

Every loss L in `mse + w * L` is >= 0, lower is better, and 0 on identical images. A metric
declares how it gets there: a similarity (higher is better) becomes `L = best - value`, a
distance (lower is better) `L = value - best`, where `best` is its value on identical images.
Built-in metrics are checked by the tests; a plugin is checked when it is loaded
(`check_convention`), so a wrong declaration stops before any training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import UserError

KINDS = ("similarity", "distance")


@dataclass(frozen=True)
class Metric:
    """A metric and how it becomes a loss.

    build(image_size) -> a callable (usually an nn.Module) mapping (x_hat, x), two (N, 3, H, W)
    float tensors in `input_range`, to one value per image, shape (N,), differentiable in x_hat.
    `min_size`: the smallest image side it takes (a window or pyramid that must fit); runs on
    smaller images are refused before training starts.
    """

    name: str
    kind: str  # "similarity" or "distance"
    best: float  # its value on identical images
    build: Callable[[int], Callable]
    input_range: tuple[float, float] = (0.0, 1.0)
    min_size: int = 1

    def as_loss(self, value: torch.Tensor) -> torch.Tensor:
        return self.best - value if self.kind == "similarity" else value - self.best

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """Model-space [-1, 1] images -> this metric's input range, in fp32 (SSIM's variances
        cancel badly in bf16)."""
        lo, hi = self.input_range
        unit = ((x.float() + 1) / 2).clamp(0, 1)
        return unit if (lo, hi) == (0.0, 1.0) else lo + (hi - lo) * unit


def _declaration_problem(m: Metric) -> str | None:
    if not isinstance(m.name, str) or not m.name or any(c.isspace() for c in m.name):
        return f"name must be a non-empty word, got {m.name!r}"
    if m.kind not in KINDS:
        return f"kind must be 'similarity' or 'distance', got {m.kind!r}"
    if isinstance(m.best, bool) or not isinstance(m.best, (int, float)) or not math.isfinite(m.best):
        return f"best must be a finite number (its value on identical images), got {m.best!r}"
    r = m.input_range
    if not (isinstance(r, (tuple, list)) and len(r) == 2 and all(isinstance(v, (int, float)) for v in r)
            and math.isfinite(r[0]) and math.isfinite(r[1]) and r[0] < r[1]):
        return f"input_range must be (low, high) with low < high, e.g. (0, 1), got {r!r}"
    if isinstance(m.min_size, bool) or not isinstance(m.min_size, int) or m.min_size < 1:
        return f"min_size must be a whole number >= 1 (the smallest image side it takes), got {m.min_size!r}"
    if not callable(m.build):
        return "build must be a callable: image size -> metric(x_hat, x)"
    return None


def _probe_images(image_size: int, n: int = 4):
    """Fixed smooth test images in [-1, 1] and two corruptions of them, a mild and a strong one."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 3, max(1, image_size // 4), max(1, image_size // 4), generator=g) * 2 - 1
    x = torch.nn.functional.interpolate(coarse, size=image_size, mode="bilinear", align_corners=False)
    noise = torch.randn(x.shape, generator=g)
    return x, (x + 0.05 * noise).clamp(-1, 1), (x + 0.5 * noise).clamp(-1, 1)


def check_convention(m: Metric, where: str, image_size: int = 32) -> None:
    """UserError (one line, naming `where`) unless `m` is a well-declared metric whose loss is
    0 on identical images, >= 0 on different ones, larger for the stronger corruption, one
    value per image, and differentiable with finite gradients (on images of at least its
    `min_size`)."""
    problem = _declaration_problem(m)
    if problem:
        raise UserError(f"{where}: {problem}")
    image_size = max(image_size, m.min_size)
    try:
        fn = m.build(image_size)
        x, mild, strong = _probe_images(image_size)
        strong = strong.requires_grad_(True)
        same, near, far = (m.as_loss(fn(m.to_input(a), m.to_input(x))) for a in (x, mild, strong))
        if isinstance(far, torch.Tensor) and far.requires_grad:
            far.sum().backward()
    except Exception as e:  # noqa: BLE001 - a plugin's own failure, reported as bad input
        raise UserError(f"{where}: fails on {image_size}x{image_size} test images "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    _check_values(m, where, x.shape[0], same, near, far, strong.grad)


def _check_values(m: Metric, where: str, n: int, same, near, far, grad) -> None:
    if not all(isinstance(v, torch.Tensor) and v.shape == (n,) for v in (same, near, far)):
        shape = tuple(same.shape) if isinstance(same, torch.Tensor) else type(same).__name__
        raise UserError(f"{where}: must return one value per image, shape ({n},), got {shape}")
    tol = 1e-4 * max(1.0, abs(m.best))
    other = "distance" if m.kind == "similarity" else "similarity"
    if not torch.isfinite(torch.stack([same, near, far])).all():
        raise UserError(f"{where}: gives non-finite values on test images")
    if same.abs().max() > tol:
        raise UserError(f"{where}: the loss is {same.abs().max().item():.4g}, not 0, on identical "
                        f"images: declare best = its value on identical images (best={m.best:g} now)")
    if min(near.min().item(), far.min().item()) < -tol:
        raise UserError(f"{where}: the loss is negative ({min(near.min().item(), far.min().item()):.4g}) "
                        f"on different images: is it a {other}, not a {m.kind}?")
    if not far.mean() > near.mean():
        raise UserError(f"{where}: the loss is not larger for more corrupted images "
                        f"({far.mean().item():.4g} vs {near.mean().item():.4g}): is it a {other}?")
    if grad is None or not torch.isfinite(grad).all():
        raise UserError(f"{where}: is not differentiable with finite gradients in x_hat")
