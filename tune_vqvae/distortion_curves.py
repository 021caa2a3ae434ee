"""Synthetic distortion curves (issue 24): the held-out PSNR a run of `mse + w * L` reports,
with noise, beside the objective curves of `tune_vqvae.curves`, so that the search benchmark
(`python -m tune_vqvae.bench search --strategies constrained`) can run a search under a
distortion budget (`--constraint "val_psnr >= -0.2"`) and score it against the truth.

A distortion curve has a curve's signature, `distortion(loss, with_mse, w, seed, epoch,
epochs) -> val_psnr` in dB (higher is better); `seed=None` asks for the noise-free value.
The value does not depend on the epoch: a budget reads a run's last value only.

The shape: the MSE baseline at BASELINE_PSNR, and a with-MSE run `drop(w)` below it,

    drop(w) = NO_MSE_DROP * w / (w + half),

0 for w -> 0 (plain MSE), NO_MSE_DROP for w -> infinity (the MSE term vanishes against w * L,
which is "L alone"), smooth and increasing in between; `half` is the w at half the L-alone
drop. The figures are the CIFAR subset's (seeds-cifar10-subset.md, 10 common seeds, and the
README's perception-distortion figure): MSE 18.124 +- 0.072 dB, mse + 0.5 ssim 0.129 dB lower
(sd 0.058 dB), SSIM alone about 1 dB lower (16.9-17.4 dB). Built in (`DISTORTIONS`):

- `measured`: those figures: drop(0.5) = 0.13 dB, so `val_psnr >= -0.2` keeps w <= 0.84. The
  budget cuts off `narrow`'s whole dip (its optimum w = 2 costs 0.37 dB) and the upper flank
  of `realistic`'s (its optimum w = 0.32 costs 0.09 dB and stays feasible).
- `binding`: 0.2 dB at w = 0.15, three times the measured cost at w = 0.5, so the same
  budget cuts `realistic`'s optimum (w = 0.32 costs 0.35 dB): the best feasible w lies on
  the budget's edge, inside the dip, where the objective still slopes and a recommendation
  is pulled towards the bound (the hard case for the violation rate).

Noise: each run is off by PSNR_SD * z dB, z a fixed N(0, 1) draw per (loss, with_mse, w,
seed) of its own (not the objective's draw): the measured same-seed correlation of PSNR
between MSE and mse + 0.5 ssim was -0.21 [-0.74, 0.49], none to speak of. One sd for every
config (0.072 and 0.058 dB measured).

Plain Python and numpy: no ray, no torch.

    >>> d = DISTORTIONS["measured"]
    >>> round(d("mse", True, None, None, 6, 6), 2), round(BASELINE_PSNR - d("gmsd", True, 0.5, None, 6, 6), 3)
    (18.12, 0.13)
    >>> round(bound_w("measured", 0.2), 2), round(bound_w("binding", 0.2), 2)
    (0.84, 0.15)
"""

from __future__ import annotations

from .curves import Curve, _config_key, _normal, load_curve
from .errors import UserError

BASELINE_PSNR = 18.12  # dB: the MSE baseline's held-out PSNR on the CIFAR subset (10 seeds)
PSNR_SD = 0.07  # dB: a run's spread (MSE 0.072, mse + 0.5 ssim 0.058)
NO_MSE_DROP = 1.0  # dB: "L alone" below the baseline (SSIM alone: 16.9-17.4 dB)
MEASURED_W, MEASURED_DROP = 0.5, 0.13  # mse + 0.5 ssim: 0.129 dB below MSE, paired over 10 seeds
BINDING_W, BINDING_DROP = 0.15, 0.2  # the binding curve's cost: the default budget at w = 0.15


def half_drop_w(w: float, drop: float) -> float:
    """The `half` of a curve whose drop at `w` is `drop` dB."""
    return w * (NO_MSE_DROP / drop - 1.0)


HALF = {"measured": half_drop_w(MEASURED_W, MEASURED_DROP), "binding": half_drop_w(BINDING_W, BINDING_DROP)}


def drop(w: float | None, with_mse: bool, half: float) -> float:
    """The noise-free PSNR drop below the MSE baseline, in dB (0 for the baseline itself)."""
    if not with_mse:
        return NO_MSE_DROP
    return 0.0 if w is None else NO_MSE_DROP * w / (w + half)


def bound_w(name: str, budget_db: float) -> float:
    """The w at which the built-in `name`'s drop reaches `budget_db` (the budget's edge)."""
    return HALF[name] * budget_db / (NO_MSE_DROP - budget_db)


def _psnr(half: float, loss: str, with_mse: bool, w: float | None, seed: int | None) -> float:
    base = BASELINE_PSNR - (0.0 if loss == "mse" else drop(w, with_mse, half))
    if seed is None:
        return base
    return base + PSNR_SD * _normal("psnr|" + _config_key(loss, with_mse, w, seed))  # its own draw


def measured(loss: str, with_mse: bool, w: float | None, seed: int | None, epoch: int, epochs: int) -> float:
    """val_psnr with the measured cost: 0.13 dB below the baseline at w = 0.5."""
    return _psnr(HALF["measured"], loss, with_mse, w, seed)


def binding(loss: str, with_mse: bool, w: float | None, seed: int | None, epoch: int, epochs: int) -> float:
    """val_psnr three times as costly: 0.2 dB below the baseline at w = 0.15."""
    return _psnr(HALF["binding"], loss, with_mse, w, seed)


DISTORTIONS: dict[str, Curve] = {"measured": measured, "binding": binding}
METRIC = "val_psnr"  # what the built-ins report (a `module:function` may report any metric)


def load_distortion(spec: str) -> Curve:
    """A built-in distortion curve by name, or `module:function` (as `curves.load_curve`)."""
    if spec in DISTORTIONS:
        return DISTORTIONS[spec]
    if ":" not in spec:
        raise UserError(f"distortion curve {spec!r}: give a built-in ({', '.join(DISTORTIONS)}) "
                        "or module:function")
    return load_curve(spec)
