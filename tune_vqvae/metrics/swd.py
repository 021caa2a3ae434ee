"""The offline metric `swd`: the multi-scale sliced Wasserstein distance over Laplacian-pyramid
7x7 patches (Karras et al. 2018, ProGAN), needing no downloaded weights. Lower is better.

Two (N, 3, H, W) image sets in [0, 1]; the distance x1e3 as Karras reports it, 0 for a set
against itself:

    >>> real01 = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> swd(real01, real01)
    0.0
    >>> swd(real01, (real01 + 0.3).clamp(0, 1)) > swd(real01, (real01 + 0.05).clamp(0, 1))
    True
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError

SWD_PATCH = 7
SWD_MIN_RES = 16  # coarsest pyramid level (Karras et al.)
SWD_DIR_REPEATS, SWD_DIRS_PER_REPEAT = 4, 128


def _blur(x: torch.Tensor) -> torch.Tensor:
    """5x5 binomial filter, mirror padding (Karras's scipy 'mirror' = torch 'reflect')."""
    k = torch.tensor([1.0, 4, 6, 4, 1], dtype=x.dtype, device=x.device)
    k = torch.outer(k, k) / 256
    c = x.shape[1]
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k.expand(c, 1, 5, 5), groups=c)


def _pyr_up(x: torch.Tensor, size) -> torch.Tensor:
    up = x.new_zeros(*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3])
    up[..., ::2, ::2] = 4 * x
    return _blur(up)[..., : size[0], : size[1]]


def pyramid_levels(h: int, w: int) -> int:
    """Levels down to SWD_MIN_RES (32x32 -> 2: the 32 band-pass and the 16 low-pass)."""
    if min(h, w) < SWD_PATCH:
        raise UserError(f"images of {h}x{w} are smaller than the {SWD_PATCH}x{SWD_PATCH} SWD patch")
    levels, r = 1, min(h, w)
    while r // 2 >= SWD_MIN_RES:
        levels, r = levels + 1, r // 2
    return levels


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    out = []
    for _ in range(levels - 1):
        small = _blur(x)[..., ::2, ::2]
        out.append(x - _pyr_up(small, x.shape[-2:]))
        x = small
    out.append(x)
    return out


def _patches(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) and (B, P) corners -> (B*P, C, 7, 7) by one gather."""
    off = torch.arange(SWD_PATCH, device=x.device)
    rows = (ys[:, :, None] + off)[:, :, :, None]  # B, P, 7, 1
    cols = (xs[:, :, None] + off)[:, :, None, :]  # B, P, 1, 7
    b = torch.arange(x.shape[0], device=x.device)[:, None, None, None]
    p = x[b, :, rows, cols]  # advanced indices first: B, P, 7, 7, C
    return p.permute(0, 1, 4, 2, 3).reshape(-1, x.shape[1], SWD_PATCH, SWD_PATCH)


def _normalise(desc: torch.Tensor) -> torch.Tensor:
    """Per-channel zero mean, unit std over all patches of one set (Karras), in place."""
    var, mean = torch.var_mean(desc, dim=(0, 2, 3), keepdim=True, correction=0)
    return desc.sub_(mean).div_(var.sqrt_().clamp_min_(1e-8)).flatten(1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, gen: torch.Generator) -> float:
    """Mean over 4x128 random unit directions of the 1-D W1 between the projections
    (equal counts: W1 is the mean gap between the sorted projections)."""
    dists = []
    for _ in range(SWD_DIR_REPEATS):
        d = torch.randn(SWD_DIRS_PER_REPEAT, a.shape[1], generator=gen).to(a.device)
        d = d / d.norm(dim=1, keepdim=True)
        pa, pb = _sort_rows(d @ a.T), _sort_rows(d @ b.T)  # (dirs, N), rows contiguous
        pa -= pb
        dists.append(float(abs(pa).mean()))
    return float(np.mean(dists))


def _sort_rows(t: torch.Tensor):
    """Sort each row; numpy on CPU (torch.sort there is ~15x slower), torch elsewhere."""
    if t.device.type == "cpu":
        return np.sort(t.numpy(), axis=1)
    return torch.sort(t, dim=1).values


class SWDAccumulator:
    """Laplacian-pyramid patch descriptors of real and reconstructed images, same random
    positions for both; memory is bounded by the image count given to it."""

    def __init__(self, patches_per_image: int, seed: int):
        self.p = patches_per_image
        self.gen = torch.Generator().manual_seed(seed)
        self.real: list[list[torch.Tensor]] = []
        self.fake: list[list[torch.Tensor]] = []

    def update(self, real01: torch.Tensor, fake01: torch.Tensor) -> None:
        levels = pyramid_levels(*real01.shape[-2:])
        pr, pf = laplacian_pyramid(real01, levels), laplacian_pyramid(fake01, levels)
        if not self.real:
            self.real, self.fake = [[] for _ in pr], [[] for _ in pr]
        for i, (r, f) in enumerate(zip(pr, pf)):
            size = (r.shape[0], self.p)
            ys = torch.randint(0, r.shape[2] - SWD_PATCH + 1, size, generator=self.gen)
            xs = torch.randint(0, r.shape[3] - SWD_PATCH + 1, size, generator=self.gen)
            ys, xs = ys.to(r.device), xs.to(r.device)
            self.real[i].append(_patches(r, ys, xs))
            self.fake[i].append(_patches(f, ys, xs))

    def distance(self) -> float:
        """Average over levels of the SWD, x1e3 as Karras et al. report it."""
        per_level = []
        for r, f in zip(self.real, self.fake):
            a, b = _normalise(torch.cat(r)), _normalise(torch.cat(f))
            per_level.append(sliced_wasserstein(a, b, self.gen))
        return 1e3 * float(np.mean(per_level))


def swd(real01: torch.Tensor, fake01: torch.Tensor, patches: int = 64, seed: int = 0) -> float:
    """Sliced Wasserstein distance between two image sets in [0, 1] (one call)."""
    acc = SWDAccumulator(patches, seed)
    acc.update(real01.float(), fake01.float())
    return acc.distance()
