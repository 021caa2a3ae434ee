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


def kid(feats_a, feats_b, subsets: int = 100, subset_size: int = 1000, seed: int = 0,
        device: str | torch.device = "cpu") -> tuple[float, float]:
    """KID between two sets of features (arrays or tensors, N x D), as (mean, std) over subsets.

    Each of `subsets` draws picks `m = min(subset_size, len(a), len(b))` rows of each set
    without replacement (numpy's generator from `seed`, so a result does not depend on the
    device) and computes the unbiased MMD^2; the result is the mean and the (ddof=0) std of
    these estimates. When both sets have exactly `m` rows every subset is the whole set and
    the std is 0: it measures subset spread, not sampling error. When the sets are small
    enough the kernel is computed once and indexed per subset (the same numbers).

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
    precompute = (len(a) + len(b)) ** 2 <= PRECOMPUTE_MAX_ENTRIES
    if precompute:  # one big product beats `subsets` small ones for a few thousand images
        k_aa, k_bb, k_ab = _cubic_kernel(a, a), _cubic_kernel(b, b), _cubic_kernel(a, b)
    values = torch.empty(subsets, dtype=torch.float64, device=a.device)
    for s in range(subsets):
        ia = torch.as_tensor(rng.choice(len(a), m, replace=False), device=a.device)
        ib = torch.as_tensor(rng.choice(len(b), m, replace=False), device=a.device)
        if precompute:
            blocks = k_aa[ia][:, ia], k_bb[ib][:, ib], k_ab[ia][:, ib]
        else:
            x, y = a[ia], b[ib]
            blocks = _cubic_kernel(x, x), _cubic_kernel(y, y), _cubic_kernel(x, y)
        values[s] = _mmd2_unbiased(*blocks)
    values = values.cpu().numpy()
    return float(values.mean()), float(values.std())
