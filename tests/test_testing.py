"""Test support (tune_vqvae.testing): the mock's known optimum, and fault injection."""

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
    InjectedCrash,
    inject_faults,
    mock_final_objective,
    mock_objective,
)


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


def test_fault_injection(tmp_path):
    c = cfg(w=0.5, faults=[{"nan_at_epoch": 2, "only_w": 0.5},
                           {"crash_at_epoch": 1, "marker_dir": str(tmp_path)}])
    with pytest.raises(InjectedCrash):
        inject_faults(c, 1)
    inject_faults(c, 1)  # the crash happens once (its marker remains)
    with pytest.raises(DivergedError, match="epoch 2"):
        inject_faults(c, 2)
    inject_faults(cfg(w=0.7, faults={"nan_at_epoch": 2, "only_w": 0.5}), 2)  # other trial: no fault
