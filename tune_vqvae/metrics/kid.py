"""Kernel Inception Distance (Binkowski et al. 2018) on the scorer's device.

The unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y/d + 1)^3, mean and std
over random subsets: the StyleGAN2-ADA (`metrics/kernel_inception_distance.py`), clean-fid
and torch-fidelity convention. KID is unbiased at any sample size, unlike FID, and can be
slightly negative when both sets come from one distribution.

The cost is the kernel: 100 subsets of 1,000 images with 2,048 features are 1.2 TFLOP in
float64, ~30 s in numpy on a 2-core CPU and milliseconds on a GPU, so it runs in torch on
the device the features were extracted on. Float64 throughout: MMD^2 is a small difference
of sums of a million kernel entries of order 1, which float32 (or TF32) would swamp.
"""

from __future__ import annotations

import numpy as np
import torch

PRECOMPUTE_MAX_ENTRIES = 32_000_000  # kernel entries of all rows (256 MB of float64)


def _cubic_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(k_aa: torch.Tensor, k_bb: torch.Tensor, k_ab: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 of two equal-size samples: within-set sums without the diagonal
    over m(m-1), the cross term over m^2 (as StyleGAN2-ADA and torch-fidelity)."""
    m = k_aa.shape[0]
    within = (k_aa.sum() - k_aa.diagonal().sum() + k_bb.sum() - k_bb.diagonal().sum()) / (m * (m - 1))
    return within - 2.0 * k_ab.sum() / (m * m)


def _on(draw, device) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.as_tensor(i, device=device) for i in draw)


def _blocks(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _cubic_kernel(x, x), _cubic_kernel(y, y), _cubic_kernel(x, y)


def _mmd2_of_subsets(a: torch.Tensor, b: torch.Tensor, draws) -> torch.Tensor:
    """Every subset's unbiased MMD^2 from the kernels of all rows, computed once. A subset's
    kernel sum is u^T K v with u, v its rows' 0/1 indicators, so all subsets are two matrix
    products, with no (slow) gather of sub-blocks."""
    k_aa, k_bb, k_ab = _blocks(a, b)
    u = torch.zeros(len(a), len(draws), dtype=a.dtype, device=a.device)
    v = torch.zeros(len(b), len(draws), dtype=a.dtype, device=a.device)
    for s, (ia, ib) in enumerate(_on(d, a.device) for d in draws):
        u[ia, s], v[ib, s] = 1.0, 1.0
    m = len(draws[0][0])
    within = ((k_aa @ u) * u).sum(0) - (k_aa.diagonal()[:, None] * u).sum(0) \
        + ((k_bb @ v) * v).sum(0) - (k_bb.diagonal()[:, None] * v).sum(0)
    return within / (m * (m - 1)) - 2.0 * ((k_ab @ v) * u).sum(0) / (m * m)


def kid(feats_a, feats_b, subsets: int = 100, subset_size: int = 1000, seed: int = 0,
        device: str | torch.device = "cpu") -> tuple[float, float]:
    """KID between two sets of features (arrays or tensors, N x D), as (mean, std) over subsets.

    Each of `subsets` draws picks `m = min(subset_size, len(a), len(b))` rows of each set
    without replacement (numpy's generator from `seed`, so a result does not depend on the
    device) and computes the unbiased MMD^2; the result is the mean and the (ddof=0) std of
    these estimates. When both sets have exactly `m` rows every subset is the whole set and
    the std is 0: it measures subset spread, not sampling error. When the sets are small
    enough the kernel is computed once for all subsets (the same numbers).

    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(200, 16)), rng.normal(size=(300, 16)) + 0.5
    >>> mean, std = kid(a, b, subsets=10, subset_size=100)
    """
    a = torch.as_tensor(feats_a).to(device=device, dtype=torch.float64)
    b = torch.as_tensor(feats_b).to(device=device, dtype=torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"kid: features must be 2-D with the same dimension, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    m = min(subset_size, len(a), len(b))
    if m < 2 or subsets < 1:
        raise ValueError(f"kid: need subset size >= 2 and subsets >= 1 (got m={m}, subsets={subsets})")
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(len(a), m, replace=False), rng.choice(len(b), m, replace=False))
             for _ in range(subsets)]
    if (len(a) + len(b)) ** 2 <= PRECOMPUTE_MAX_ENTRIES:
        values = _mmd2_of_subsets(a, b, draws)
    else:
        values = torch.stack([_mmd2_unbiased(*_blocks(a[ia], b[ib]))
                              for ia, ib in (_on(d, a.device) for d in draws)])
    values = values.cpu().numpy()
    return float(values.mean()), float(values.std())
