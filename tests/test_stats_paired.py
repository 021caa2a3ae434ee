"""Paired comparisons (tune_vqvae.stats.paired): coverage at the nominal rate on simulated
same-seed pairs, correlated and not, with unequal variances; Welch where nothing pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tune_vqvae.stats.paired import compare_runs, correlation_interval, paired_interval, percent_of


def _pairs(rng, n, rho, sd_base=3.5, sd_cand=1.2, gain=-1.0):
    """n same-seed pairs: a shared seed component with correlation rho, unequal spreads."""
    shared, own_b, own_c = rng.standard_normal((3, n))
    base = 67.0 + sd_base * (math.sqrt(rho) * shared + math.sqrt(1 - rho) * own_b)
    cand = 67.0 + gain + sd_cand * (math.sqrt(rho) * shared + math.sqrt(1 - rho) * own_c)
    return cand, base


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_paired_t_covers_at_its_nominal_rate(rho):
    rng = np.random.default_rng(1)
    hits = [paired_interval(*_pairs(rng, 8, rho)).contains(-1.0) for _ in range(3000)]
    assert 0.935 <= np.mean(hits) <= 0.965  # 3000 draws: +-0.8% standard error around 0.95


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_paired_bootstrap_from_20_pairs_covers_near_nominal(rho):
    rng = np.random.default_rng(2)
    hits = [paired_interval(*_pairs(rng, 20, rho), method="bootstrap", n_boot=1000, seed=k).contains(-1.0)
            for k in range(600)]
    assert 0.91 <= np.mean(hits) <= 0.98  # the percentile bootstrap runs ~1% under at 20 pairs


def test_pairing_narrows_the_interval_when_runs_correlate_and_welch_does_not_pair():
    rng = np.random.default_rng(3)
    cand, base = _pairs(rng, 10, 0.8, sd_base=3.0, sd_cand=3.0)
    c = compare_runs(dict(enumerate(cand)), dict(enumerate(base)))
    welch = compare_runs(dict(enumerate(cand)), {k + 100: v for k, v in enumerate(base)})
    assert c.pairs == 10 and c.diff.method == "paired-t" and welch.pairs == 0 and welch.diff.method == "welch"
    assert c.diff.half_width < 0.7 * welch.diff.half_width
    assert c.correlation is not None and c.correlation.low > 0.2
    assert c.percent.estimate == pytest.approx(100 * c.diff.estimate / np.mean(base))


def test_fisher_interval_covers_and_five_pairs_measure_little():
    rng = np.random.default_rng(4)
    hits = [correlation_interval(*_pairs(rng, 12, 0.5, sd_cand=3.5)).contains(0.5) for _ in range(2000)]
    assert 0.93 <= np.mean(hits) <= 0.97
    wide = correlation_interval([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.0, 4.0, 3.0, 5.0])
    assert wide.low < -0.2 and wide.high > 0.95  # r = 0.8 from 5 pairs: nearly anything


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="pairs of equal length"):
        paired_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        paired_interval([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="reference mean is 0"):
        percent_of(paired_interval([1.0, 2.0], [1.5, 2.5]), 0.0)
