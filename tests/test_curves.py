"""The benchmark's synthetic curves (tune_vqvae.curves): the measured noise model with a
shared seed component ("name@rho") and the narrow-optimum curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tune_vqvae.curves import CV_MSE, CV_PERCEPTUAL, load_curve, true_minimum
from tune_vqvae.errors import UserError


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_same_seed_runs_correlate_at_rho_with_the_measured_spreads(rho):
    curve = load_curve(f"realistic@{rho}")
    base = np.array([curve("mse", True, None, s, 6, 6) for s in range(3000)])
    cand = np.array([curve("gmsd", True, 0.5, s, 6, 6) for s in range(3000)])
    assert np.corrcoef(base, cand)[0, 1] == pytest.approx(rho, abs=0.05)
    assert base.std() / base.mean() == pytest.approx(CV_MSE, rel=0.06)
    assert cand.std() / cand.mean() == pytest.approx(CV_PERCEPTUAL, rel=0.06)
    assert curve("mse", True, None, 7, 6, 6) == curve("mse", True, None, 7, 6, 6)  # reproducible per seed


def test_plain_names_keep_the_older_noise_model():
    old, new = load_curve("realistic"), load_curve("realistic@0")
    base = np.array([old("mse", True, None, s, 6, 6) for s in range(2000)])
    assert base.std() / base.mean() == pytest.approx(0.035, rel=0.07)
    assert old("gmsd", True, 0.5, None, 6, 6) == new("gmsd", True, 0.5, None, 6, 6)  # same truth


def test_narrow_curve_has_its_dip_above_w_1_and_the_grid_misses_it():
    curve = load_curve("narrow")
    w, value = true_minimum(curve, "gmsd", 1e-3, 10.0, 6)
    assert math.log10(w) == pytest.approx(math.log10(2.0), abs=0.01) and value == pytest.approx(66.5, abs=0.1)
    at_1 = curve("gmsd", True, 1.0, None, 6, 6)
    assert 69.0 < at_1 < 70.0  # the grid's best w = 1 gains < 1% of the 5%
    half = [x for x in np.linspace(-1, 1, 2001) if curve("gmsd", True, 10**x, None, 6, 6) < 70 - 1.75]
    assert 0.2 < max(half) - min(half) < 0.45  # a few tenths of a decade at half depth


@pytest.mark.parametrize("spec", ["realistic@1.0", "realistic@x", "nowhere@0.5"])
def test_bad_rho_spec_is_a_user_error(spec):
    with pytest.raises(UserError, match="0 <= rho < 1"):
        load_curve(spec)
