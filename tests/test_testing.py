"""Test support (tune_vqvae.testing, train.faults): the mock's known optimum, and fault injection."""

from __future__ import annotations

import math
import os

import pytest
from conftest import trial_config as cfg

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters

from tune_vqvae.errors import DivergedError  # noqa: E402
from tune_vqvae.testing import (  # noqa: E402
    MOCK_BASELINE,
    MOCK_BEST_W,
    MOCK_FLOOR,
    MOCK_NO_MSE,
    MOCK_STEP_MS,
    MOCK_TEST_BEST_W,
    MOCK_TEST_FACTOR,
    MOCK_WARMUP,
    mock_final_objective,
    mock_objective,
    mock_step_ms,
    mock_test_objective,
)
from tune_vqvae.train.faults import InjectedCrash, inject_faults  # noqa: E402


def test_mock_has_its_known_optimum():
    ws = [10 ** (k / 20) for k in range(-60, 21)]
    best = min(ws, key=lambda w: mock_final_objective(cfg(w=w)))
    assert abs(math.log10(best / MOCK_BEST_W["gmsd"])) < 0.06
    assert mock_final_objective(cfg(w=MOCK_BEST_W["gmsd"])) == pytest.approx(MOCK_FLOOR, rel=0.02)
    assert mock_final_objective(cfg(role="baseline")) == MOCK_BASELINE
    assert mock_final_objective(cfg(with_mse=False)) == MOCK_NO_MSE
    # learning curves decrease to the final value
    curve = [mock_objective(cfg(w=1.0), e, 5) for e in range(1, 6)]
    assert curve == sorted(curve, reverse=True) and curve[-1] == mock_final_objective(cfg(w=1.0))


def test_mock_test_split_ranks_the_weights_otherwise():
    """With --holdout the test split's optimum is elsewhere: a test of the selection can tell
    whether the held-out or the test score picked the winner."""
    ws = [10 ** (k / 20) for k in range(-60, 21)]
    on_val = min(ws, key=lambda w: mock_final_objective(cfg(w=w)))
    on_test = min(ws, key=lambda w: mock_test_objective(cfg(w=w)))
    assert abs(math.log10(on_test / MOCK_TEST_BEST_W["gmsd"])) < 0.06 and on_val / on_test > 3
    grid = [1.0, 0.5, 0.25]  # the paper's grid: the two rankings pick different points
    assert min(grid, key=lambda w: mock_final_objective(cfg(w=w))) == 1.0
    assert min(grid, key=lambda w: mock_test_objective(cfg(w=w))) == 0.5
    assert mock_test_objective(cfg(role="baseline")) == pytest.approx(MOCK_TEST_FACTOR * MOCK_BASELINE)
    assert mock_test_objective(cfg(with_mse=False)) == pytest.approx(MOCK_TEST_FACTOR * MOCK_NO_MSE)


def test_mock_step_times_per_loss():
    assert mock_step_ms(cfg(w=1.0), 2)[0] == MOCK_STEP_MS["gmsd"] != MOCK_STEP_MS["mse"]
    assert mock_step_ms(cfg(role="baseline"), 2)[0] == MOCK_STEP_MS["mse"]
    assert mock_step_ms(cfg(w=1.0), 1)[0] == MOCK_WARMUP * MOCK_STEP_MS["gmsd"]
    assert 0 < mock_step_ms(cfg(w=1.0), 2)[1] < mock_step_ms(cfg(w=1.0), 2)[0]


def test_fault_injection(tmp_path):
    c = cfg(w=0.5, faults=[{"nan_at_epoch": 2, "only_w": 0.5},
                           {"crash_at_epoch": 1, "marker_dir": str(tmp_path)}])
    with pytest.raises(InjectedCrash):
        inject_faults(c, 1)
    inject_faults(c, 1)  # the crash happens once (its marker remains)
    with pytest.raises(DivergedError, match="epoch 2"):
        inject_faults(c, 2)
    inject_faults(cfg(w=0.7, faults={"nan_at_epoch": 2, "only_w": 0.5}), 2)  # other trial: no fault


def test_realistic_mock_has_the_measured_noise_model():
    """--mock-curve realistic: flat at the baseline for w -> 0, a shallow optimum, a steep rise
    above 1, 3.5% multiplicative noise per run, reproducible per (config, seed)."""
    import numpy as np

    from tune_vqvae.curves import BASELINE, NOISE_CV

    def value(seed, **c):
        return mock_objective(cfg(mock_curve="realistic", train={"seed": seed}, **c), 6, 6)

    assert value(3, w=0.3) == value(3, w=0.3)  # reproducible
    assert value(3, w=0.3) != value(4, w=0.3) and value(3, w=0.3) != value(3, w=0.31)
    base = np.array([value(s, role="baseline") for s in range(400)])
    assert abs(base.mean() / BASELINE - 1) < 0.01 and abs(base.std() / base.mean() - NOISE_CV) < 0.005
    small = np.mean([value(s, w=1e-3) for s in range(400)])
    best = np.mean([value(s, w=0.3) for s in range(400)])
    large = np.mean([value(s, w=10.0) for s in range(400)])
    assert abs(small / BASELINE - 1) < 0.01 and 0.93 < best / BASELINE < 0.97 and large > 1.3 * BASELINE
    # uncorrelated across configs: the same seeds at two weights
    a = [value(s, w=0.3) for s in range(400)]
    b = [value(s, w=0.5) for s in range(400)]
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.15
    # early epochs look worse, more so for small w (the fidelity trap of early stopping)
    early = lambda w: mock_objective(cfg(mock_curve="realistic", w=w, train={"seed": 0}), 2, 6)  # noqa: E731
    assert early(1e-3) / value(0, w=1e-3) > early(1.0) / value(0, w=1.0) > 1
