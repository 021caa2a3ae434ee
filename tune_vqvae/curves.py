"""Synthetic objective curves: what a training run of `mse + w * L` would score, with noise.

A curve is any callable `curve(loss, with_mse, w, seed, epoch, epochs) -> value` (lower is
better): the objective a run of that config with that seed reports after `epoch` of
`epochs` epochs. `seed=None` asks for the noise-free value (the truth a benchmark scores a
recommendation against). The mock trainable (`tune_vqvae.testing`, `--mock-curve`) and the
search benchmark (`python -m tune_vqvae.bench search --curve`) both run them.

Built in (`CURVES`), shaped like the CIFAR-10 measurements of issue 12 (SWD about 70):

- `realistic`: flat at the MSE baseline for w -> 0, a shallow optimum (5% below the
  baseline near w = 0.3), a steep rise above w = 1; "L alone" 40% worse than the baseline.
- `no_gain`: nothing beats MSE: flat at the baseline up to w = 0.3, then the same rise.

Both have the measured noise: each run is off by a multiplicative factor 1 + 0.035 z,
z ~ N(0, 1) drawn from (loss, with_mse, w, seed), so a run is reproducible and runs of
different configs (or seeds) are uncorrelated (r = 0.03 measured). Early epochs are worse,
and more so for small w (a perceptual term speeds up early progress), which is what makes
an early-stopped trial's value mislead a model of the final objective.

Plain Python and numpy: no ray, no torch.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable

import numpy as np

from .errors import UserError

Curve = Callable[..., float]

BASELINE = 70.0  # final objective of the plain-MSE baseline (SWD-like units)
NOISE_CV = 0.035  # run-to-run noise: std / mean of one run (issue 12: 3.5%)
NO_MSE_FACTOR = 1.4  # "L alone" relative to the baseline
OPTIMUM_LOG10_W = -0.5  # the realistic curve's optimum: w = 0.32
OPTIMUM_DEPTH = 0.05  # ... 5% below the baseline
OPTIMUM_WIDTH = 0.6  # decades (Gaussian dip)
RISE = 0.5  # relative rise per squared decade above the knee


def run_noise(loss: str, with_mse: bool, w: float | None, seed: int | None) -> float:
    """The multiplicative noise factor of one run: 1 + NOISE_CV * z, z a fixed N(0, 1) draw
    per (loss, with_mse, w, seed); 1 for seed None. A stable hash (not Python's salted one)."""
    if seed is None:
        return 1.0
    key = f"{loss}|{bool(with_mse)}|{'-' if w is None else repr(float(w))}|{int(seed)}"
    digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return 1.0 + NOISE_CV * float(np.random.default_rng(digest).standard_normal())


def learning_factor(w: float | None, epoch: int, epochs: int) -> float:
    """How much worse than its final value a run is after `epoch` of `epochs`: 1 at the end;
    early on 0.15 + 0.25/(1 + w/0.1) per unit of (epochs/epoch - 1), larger for small w."""
    slow = 0.15 + 0.25 / (1.0 + (w or 0.0) / 0.1)
    return 1.0 + slow * (epochs / max(epoch, 1) - 1.0)


def _final(loss: str, with_mse: bool, w: float | None, dip: float, knee: float) -> float:
    """Noise-free final objective: baseline * (1 - dip bump at the optimum + rise above the knee)."""
    if loss == "mse":
        return BASELINE
    if not with_mse:
        return NO_MSE_FACTOR * BASELINE
    x = math.log10(w)
    bump = dip * math.exp(-(((x - OPTIMUM_LOG10_W) / OPTIMUM_WIDTH) ** 2))
    return BASELINE * (1.0 - bump + RISE * max(0.0, x - knee) ** 2)


def realistic(loss: str, with_mse: bool, w: float | None, seed: int | None, epoch: int, epochs: int) -> float:
    """Flat at the baseline for w -> 0, 5% better near w = 0.3, steeply worse above w = 1."""
    return (_final(loss, with_mse, w, OPTIMUM_DEPTH, 0.0)
            * learning_factor(w if with_mse else 1.0, epoch, epochs) * run_noise(loss, with_mse, w, seed))


def no_gain(loss: str, with_mse: bool, w: float | None, seed: int | None, epoch: int, epochs: int) -> float:
    """Nothing beats MSE: flat at the baseline up to w = 0.3, worse above."""
    return (_final(loss, with_mse, w, 0.0, OPTIMUM_LOG10_W)
            * learning_factor(w if with_mse else 1.0, epoch, epochs) * run_noise(loss, with_mse, w, seed))


CURVES: dict[str, Curve] = {"realistic": realistic, "no_gain": no_gain}


def load_curve(spec: str) -> Curve:
    """A built-in curve by name, or `module:function` importable from here."""
    if spec in CURVES:
        return CURVES[spec]
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise UserError(f"curve {spec!r}: give a built-in ({', '.join(CURVES)}) or module:function")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise UserError(f"curve {spec!r} cannot be loaded ({e}); check the module path") from None
    if not callable(fn):
        raise UserError(f"curve {spec!r} is not callable")
    return fn


def true_minimum(curve: Curve, loss: str, low: float, high: float, epochs: int,
                 points: int = 2001) -> tuple[float, float]:
    """(w*, value) of the noise-free final curve on a fine log grid over [low, high]."""
    ws = np.logspace(math.log10(low), math.log10(high), points)
    values = np.array([curve(loss, True, float(w), None, epochs, epochs) for w in ws])
    i = int(np.argmin(values))
    return float(ws[i]), float(values[i])
