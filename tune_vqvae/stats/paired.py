"""Paired comparisons under common random numbers (issue 21).

When the baseline and a candidate train on the same seeds, the difference of each same-seed
pair carries the shared part of the noise away: var(a - b) = var(a) + var(b) - 2 rho sd(a)
sd(b). These functions turn such pairs into an interval of `candidate - baseline` (paired t,
or a percentile bootstrap of the paired differences from ~20 pairs), fall back to Welch
(`intervals.diff_interval`) where runs cannot be paired, and measure rho itself with its
Fisher interval, so every answer says how much the pairing bought.

Sign convention as in `tune_vqvae.stats.intervals`: a difference is `candidate - baseline`.

    >>> base = {0: 67.2, 1: 61.8, 2: 65.1, 3: 65.5}
    >>> cand = {0: 65.9, 1: 60.4, 2: 63.7, 3: 64.5}
    >>> c = compare_runs(cand, base)
    >>> c.diff.method, round(c.diff.estimate, 3)
    ('paired-t', -1.275)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .intervals import Interval, diff_interval

BOOTSTRAP_FROM = 20  # pairs from which the bootstrap replaces the t interval (undercovers below)
MIN_PAIRS = 2  # a paired interval needs a spread of differences


def _finite(values, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: values must be finite (drop diverged runs first)")
    return x


def paired_interval(candidate, baseline, level: float = 0.95, method: str = "t",
                    n_boot: int = 4000, seed: int = 0) -> Interval:
    """Interval of mean(candidate - baseline) from same-seed pairs (`candidate[i]` and
    `baseline[i]` trained with one seed). "t": the paired t interval, exact for normal
    differences at any n >= 2. "bootstrap": percentile interval of the mean of the paired
    differences resampled with replacement; needs no normality but undercovers at few pairs,
    so use it from BOOTSTRAP_FROM pairs on."""
    a, b = _finite(candidate, "candidate"), _finite(baseline, "baseline")
    if a.size != b.size or a.size < MIN_PAIRS:
        raise ValueError(f"paired_interval: need >= {MIN_PAIRS} pairs of equal length, "
                         f"got {a.size} and {b.size}")
    d = a - b
    mean, n = float(d.mean()), d.size
    if method == "t":
        half = stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
        return Interval(mean, mean - half, mean + half, level, "paired-t", 2 * n)
    if method == "bootstrap":
        means = d[np.random.default_rng(seed).integers(0, n, (n_boot, n))].mean(axis=1)
        low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
        return Interval(mean, float(low), float(high), level, "paired-bootstrap", 2 * n)
    raise ValueError(f"paired_interval: method must be 't' or 'bootstrap', got {method!r}")


def correlation_interval(a, b, level: float = 0.95) -> Interval:
    """Pearson's r of same-seed runs with Fisher's z interval tanh(atanh r +- z/sqrt(n - 3));
    needs n >= 4 pairs (5 pairs give about [-0.87, 0.89] around 0: they measure little)."""
    x, y = _finite(a, "a"), _finite(b, "b")
    if x.size != y.size or x.size < 4:
        raise ValueError(f"correlation_interval: need >= 4 pairs of equal length, got {x.size} and {y.size}")
    if x.std() == 0 or y.std() == 0:
        raise ValueError("correlation_interval: a side has no spread; r is undefined")
    r = float(np.clip(np.corrcoef(x, y)[0, 1], -0.999999, 0.999999))
    half = stats.norm.ppf(0.5 + level / 2) / math.sqrt(x.size - 3)
    z = math.atanh(r)
    return Interval(r, math.tanh(z - half), math.tanh(z + half), level, "fisher-z", x.size)


def measured_correlation(a, b, level: float = 0.95) -> Interval | None:
    """`correlation_interval` where r is defined (from 4 pairs on, a spread on both sides),
    else None: the one rule for when an answer states the same-seed correlation."""
    if len(a) < 4 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return correlation_interval(a, b, level)


def percent_of(iv: Interval, reference_mean: float) -> Interval:
    """The interval in percent of the reference mean (as the verdicts state differences);
    the reference mean is taken as known, as `answer.compare` does."""
    if reference_mean == 0:
        raise ValueError("percent_of: the reference mean is 0; a percentage is undefined")
    s = 100.0 / abs(reference_mean)
    return Interval(s * iv.estimate, s * iv.low, s * iv.high, iv.level, iv.method, iv.n)


@dataclass(frozen=True)
class Comparison:
    """`candidate - baseline` (metric units and % of the baseline mean) and, for paired runs
    from 4 pairs on, the same-seed correlation; `pairs` 0 where Welch was used."""

    diff: Interval
    percent: Interval
    pairs: int
    correlation: Interval | None


def compare_runs(candidate: dict, baseline: dict, level: float = 0.95) -> Comparison:
    """Compare {seed: value} runs: paired on the common seeds where there are >= MIN_PAIRS
    (the bootstrap from BOOTSTRAP_FROM), else Welch on all runs (unpaired seeds). Runs on
    seeds the other side lacks are left out of a paired comparison: they carry no pair."""
    common = sorted(set(candidate) & set(baseline))
    if len(common) >= MIN_PAIRS:
        a = [candidate[s] for s in common]
        b = [baseline[s] for s in common]
        diff = paired_interval(a, b, level, "bootstrap" if len(common) >= BOOTSTRAP_FROM else "t")
        corr = measured_correlation(a, b, level)
        ref = float(np.mean(b))
    else:
        diff = diff_interval(list(candidate.values()), list(baseline.values()), level)
        corr, ref = None, float(np.mean(list(baseline.values())))
    return Comparison(diff, percent_of(diff, ref), len(common) if len(common) >= MIN_PAIRS else 0, corr)
