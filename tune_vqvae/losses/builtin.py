"""The built-in metrics, all from piqa: the paper's six (PSNR, SSIM, MS-SSIM, HaarPSI, GMSD,
MS-GMSD) and LPIPS (a network: its weights are found by `losses.lpips`).

Similarities become `best - value` (best = their value on identical images: 1, or
10*log10(1/eps) dB for PSNR); distances are their own loss (best 0).
"""

from __future__ import annotations

import inspect
import math

import piqa
import torch
import torch.nn.functional as F
from piqa.utils.functional import channel_conv, gradient_kernel, haar_kernel
from torch import nn

from . import lpips
from .metric import Metric

# piqa's input checks call .item() on every forward (a host sync per step); our inputs are
# in range by construction (tanh output, uint8 data), so turn them off.
piqa.utils.set_debug(False)

SSIM_WINDOW = 11  # piqa's default (Wang et al.): images must be at least 11x11
MS_SSIM_WINDOW = 7  # Gaussian sigma 1.5 truncated at 2 sigma; 11 taps would not fit 8x8
MS_GMSD_KERNEL = 3  # Prewitt
PSNR_EPSILON = 1e-8  # piqa's default; PSNR of identical images is 10*log10(1/eps) = 80 dB


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


class HaarPSI(piqa.HaarPSI):
    """piqa's HaarPSI with its Haar gradient kernels built once, as buffers (on the module's
    device). piqa's `haarpsi` builds them at every call on the CPU and copies them to the
    input's device (`gradient_kernel(haar_kernel(k)).to(x.device)`, piqa/haarpsi.py:76):
    inside a compiled step a CPU op and a host-to-device copy, for which inductor skips CUDA
    graphs ("skipping cudagraphs due to cpu device"). `forward` is piqa's `haarpsi` with these
    kernels and piqa's defaults (tests: equal to piqa's HaarPSI, values and gradients)."""

    DEFAULTS = {k: p.default for k, p in inspect.signature(piqa.haarpsi.haarpsi).parameters.items()
                if k in ("n_kernels", "c", "alpha")}

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction=reduction)
        for j in range(1, self.DEFAULTS["n_kernels"] + 1):
            self.register_buffer(f"haar{j}", gradient_kernel(haar_kernel(2**j)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = (self.convert(F.avg_pool2d(t, 2, ceil_mode=True)) for t in (x, y))
        return piqa.utils.functional.reduce_tensor(self._haarpsi(x, y), self.reduction)

    def _haarpsi(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c, alpha, n = self.DEFAULTS["c"], self.DEFAULTS["alpha"], self.DEFAULTS["n_kernels"]
        gs = []
        for j in range(1, n + 1):  # gradient similarities of the Y channel, Haar scale 2**j
            pad = 2**j // 2
            g_x, g_y = (channel_conv(t[:, :1], getattr(self, f"haar{j}"), padding=pad)[..., 1:, 1:].abs()
                        for t in (x, y))
            gs += [(2 * g_x * g_y + c) / (g_x**2 + g_y**2 + c)] if j < n else [g_x, g_y]
        ls = torch.stack(gs[:-2], dim=-1).mean(dim=-1)
        w = torch.maximum(gs[-2], gs[-1])
        m_x, m_y = (F.avg_pool2d(t[:, 1:], 2, stride=1, padding=1)[..., 1:, 1:].abs() for t in (x, y))
        cs = (2 * m_x * m_y + c) / (m_x**2 + m_y**2 + c)  # chromatic (IQ) similarity
        ls = torch.cat((ls, cs.mean(dim=1, keepdim=True)), dim=1)
        w = torch.cat((w, w.mean(dim=1, keepdim=True)), dim=1)
        hpsi = (torch.sigmoid(ls * alpha) * w).sum(dim=(-1, -2, -3)) / w.sum(dim=(-1, -2, -3))
        return (torch.logit(hpsi) / alpha) ** 2


def _per_image(make):
    """build(image_size) for a piqa module that reports one value per image."""
    return lambda size: make(size, reduction="none")


# The smallest image side of each metric (min_size), found by trying piqa 1.3 on n x n images
# (tests/test_losses.py proves n passes and n - 1 fails): SSIM's window and MS-SSIM's finest
# window must fit; GMSD halves the image before its 3x3 Prewitt filter (2x2 gives NaN), MS-GMSD
# keeps as many scales as fit; PSNR and HaarPSI (padded filters) take any size.
# The paper's losses: what `--loss all` searches. `mse` is the plain reference loss.
METRICS: dict[str, Metric] = {
    "psnr": Metric("psnr", "similarity", 10 * math.log10(1 / PSNR_EPSILON),
                   _per_image(lambda s, **kw: piqa.PSNR(epsilon=PSNR_EPSILON, **kw))),
    "ssim": Metric("ssim", "similarity", 1.0,
                   _per_image(lambda s, **kw: piqa.SSIM(window_size=SSIM_WINDOW, **kw)),
                   min_size=SSIM_WINDOW),
    "ms_ssim": Metric("ms_ssim", "similarity", 1.0, _per_image(ms_ssim), min_size=MS_SSIM_WINDOW),
    "haarpsi": Metric("haarpsi", "similarity", 1.0, _per_image(lambda s, **kw: HaarPSI(**kw))),
    "gmsd": Metric("gmsd", "distance", 0.0, _per_image(lambda s, **kw: piqa.GMSD(**kw)), min_size=3),
    "ms_gmsd": Metric("ms_gmsd", "distance", 0.0, _per_image(ms_gmsd), min_size=2),
}
PERCEPTUAL_LOSSES = tuple(METRICS)
LOSSES = ("mse", *PERCEPTUAL_LOSSES)

# Built in, but not among the paper's losses (`all`): LPIPS needs two weights files.
NETWORK_METRICS: dict[str, Metric] = {
    # AlexNet's strided convolutions and pools leave no pixel for its 5th layer below 31x31
    "lpips": Metric("lpips", "distance", 0.0, lpips.build, min_size=lpips.MIN_SIZE),
}
