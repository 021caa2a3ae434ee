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

`narrow` (issue 21): flat at the baseline up to w = 1, a narrow dip (5% deep, Gaussian
width 0.2 decades, so about 0.33 decades at half depth) at w = 2, rising above w = 4: the
paper grid's w = 1 lies 0.3 decades off, and a surrogate fitted to few points can miss it.

Common seeds (issue 21): `load_curve("realistic@0.8")` gives a curve with the noise measured
on the CIFAR subset (seeds-cifar10-subset.md): per-config spreads (MSE 5.2% of the mean,
mse + 0.5 * ssim 1.7%; a with-MSE run's spread goes from the first to the second as
CV_PERCEPTUAL + (CV_MSE - CV_PERCEPTUAL) exp(-w / 0.1), the shape ours) and a shared seed
component: z = sqrt(rho) z_seed + sqrt(1 - rho) z_config, so same-seed runs of different
configs correlate at rho. Without "@" a built-in keeps the older model above (3.5%,
independent), so earlier benchmark figures and the mock's tests stay comparable.

Plain Python and numpy: no ray, no torch.
"""

from __future__ import annotations

import functools
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


CV_MSE, CV_PERCEPTUAL = 0.052, 0.017  # measured spreads (sd/mean of SWD, 10 seeds each)
NOISE_W = 0.1  # the w over which a with-MSE run's spread falls from CV_MSE towards CV_PERCEPTUAL


def _normal(key: str) -> float:
    """A fixed N(0, 1) draw per key, from a stable hash (not Python's salted one)."""
    digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return float(np.random.default_rng(digest).standard_normal())


def _config_key(loss: str, with_mse: bool, w: float | None, seed: int) -> str:
    return f"{loss}|{bool(with_mse)}|{'-' if w is None else repr(float(w))}|{int(seed)}"


def run_noise(loss: str, with_mse: bool, w: float | None, seed: int | None) -> float:
    """The multiplicative noise factor of one run: 1 + NOISE_CV * z, z a fixed N(0, 1) draw
    per (loss, with_mse, w, seed); 1 for seed None."""
    if seed is None:
        return 1.0
    return 1.0 + NOISE_CV * _normal(_config_key(loss, with_mse, w, seed))


def measured_cv(loss: str, with_mse: bool, w: float | None) -> float:
    """The run-to-run spread (sd / mean) of a config in the measured noise model."""
    if loss == "mse":
        return CV_MSE
    if not with_mse:
        return CV_PERCEPTUAL
    return CV_PERCEPTUAL + (CV_MSE - CV_PERCEPTUAL) * math.exp(-w / NOISE_W)


def seed_noise(loss: str, with_mse: bool, w: float | None, seed: int | None, rho: float) -> float:
    """The measured model's noise factor 1 + cv * z, z = sqrt(rho) z_seed + sqrt(1 - rho) z_config:
    same-seed runs of any two configs correlate at rho; 1 for seed None."""
    if seed is None:
        return 1.0
    z = math.sqrt(rho) * _normal(f"seed|{int(seed)}") + math.sqrt(1 - rho) * _normal(
        _config_key(loss, with_mse, w, seed))
    return 1.0 + measured_cv(loss, with_mse, w) * z


def _noise(loss, with_mse, w, seed, rho: float | None) -> float:
    return run_noise(loss, with_mse, w, seed) if rho is None else seed_noise(loss, with_mse, w, seed, rho)


def learning_factor(w: float | None, epoch: int, epochs: int) -> float:
    """How much worse than its final value a run is after `epoch` of `epochs`: 1 at the end;
    early on 0.15 + 0.25/(1 + w/0.1) per unit of (epochs/epoch - 1), larger for small w."""
    slow = 0.15 + 0.25 / (1.0 + (w or 0.0) / 0.1)
    return 1.0 + slow * (epochs / max(epoch, 1) - 1.0)


NARROW_LOG10_W, NARROW_WIDTH, NARROW_KNEE = math.log10(2.0), 0.2, math.log10(4.0)


def _final(loss: str, with_mse: bool, w: float | None, dip: float, knee: float,
           centre: float = OPTIMUM_LOG10_W, width: float = OPTIMUM_WIDTH) -> float:
    """Noise-free final objective: baseline * (1 - dip bump at the optimum + rise above the knee)."""
    if loss == "mse":
        return BASELINE
    if not with_mse:
        return NO_MSE_FACTOR * BASELINE
    x = math.log10(w)
    bump = dip * math.exp(-(((x - centre) / width) ** 2))
    return BASELINE * (1.0 - bump + RISE * max(0.0, x - knee) ** 2)


def realistic(loss: str, with_mse: bool, w: float | None, seed: int | None, epoch: int, epochs: int,
              rho: float | None = None) -> float:
    """Flat at the baseline for w -> 0, 5% better near w = 0.3, steeply worse above w = 1."""
    return (
        _final(loss, with_mse, w, OPTIMUM_DEPTH, 0.0)
        * learning_factor(w if with_mse else 1.0, epoch, epochs)
        * _noise(loss, with_mse, w, seed, rho)
    )


def no_gain(loss: str, with_mse: bool, w: float | None, seed: int | None, epoch: int, epochs: int,
            rho: float | None = None) -> float:
    """Nothing beats MSE: flat at the baseline up to w = 0.3, worse above."""
    return (
        _final(loss, with_mse, w, 0.0, OPTIMUM_LOG10_W)
        * learning_factor(w if with_mse else 1.0, epoch, epochs)
        * _noise(loss, with_mse, w, seed, rho)
    )


def narrow(loss: str, with_mse: bool, w: float | None, seed: int | None, epoch: int, epochs: int,
           rho: float | None = None) -> float:
    """Flat at the baseline up to w = 1, a narrow 5% dip at w = 2, worse above w = 4."""
    return (
        _final(loss, with_mse, w, OPTIMUM_DEPTH, NARROW_KNEE, NARROW_LOG10_W, NARROW_WIDTH)
        * learning_factor(w if with_mse else 1.0, epoch, epochs)
        * _noise(loss, with_mse, w, seed, rho)
    )


CURVES: dict[str, Curve] = {"realistic": realistic, "no_gain": no_gain, "narrow": narrow}


def _with_rho(spec: str) -> Curve:
    """"name@rho": a built-in with the measured noise model at same-seed correlation rho."""
    name, _, rho_text = spec.partition("@")
    try:
        rho = float(rho_text)
    except ValueError:
        rho = math.nan
    if name not in CURVES or not 0.0 <= rho < 1.0:
        raise UserError(f"curve {spec!r}: give a built-in ({', '.join(CURVES)}) and a correlation "
                        "0 <= rho < 1, e.g. realistic@0.8")
    return functools.partial(CURVES[name], rho=rho)


def load_curve(spec: str) -> Curve:
    """A built-in curve by name ("name@rho": with the measured noise model), or
    `module:function` importable from here."""
    if spec in CURVES:
        return CURVES[spec]
    if "@" in spec:
        return _with_rho(spec)
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


def true_minimum(
    curve: Curve, loss: str, low: float, high: float, epochs: int, points: int = 2001
) -> tuple[float, float]:
    """(w*, value) of the noise-free final curve on a fine log grid over [low, high]."""
    ws = np.logspace(math.log10(low), math.log10(high), points)
    values = np.array([curve(loss, True, float(w), None, epochs, epochs) for w in ws])
    i = int(np.argmin(values))
    return float(ws[i]), float(values[i])
