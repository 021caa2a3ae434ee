"""Test support that Ray workers import (it imports ray): the mock trainable (`--mock`) and
its known curves. Fault injection, which the real trainable calls too, is in
`tune_vqvae.train.faults` (no ray).

    mock    mock_trainable, the known optimum per loss (MOCK_*), mock_objective
"""

from .mock import (
    MOCK_BASELINE,
    MOCK_BEST_JOINT,
    MOCK_BEST_W,
    MOCK_FLOOR,
    MOCK_NO_MSE,
    MOCK_RECON_LOSS_MS,
    MOCK_SEED_NOISE,
    MOCK_STEP_MS,
    MOCK_TEST_BEST_W,
    MOCK_TEST_FACTOR,
    MOCK_WARMUP,
    mock_final_objective,
    mock_objective,
    mock_step_ms,
    mock_test_objective,
    mock_trainable,
)

__all__ = ["MOCK_BASELINE", "MOCK_BEST_JOINT", "MOCK_BEST_W", "MOCK_FLOOR", "MOCK_NO_MSE",
           "MOCK_RECON_LOSS_MS", "MOCK_SEED_NOISE", "MOCK_STEP_MS", "MOCK_TEST_BEST_W",
           "MOCK_TEST_FACTOR", "MOCK_WARMUP", "mock_final_objective", "mock_objective",
           "mock_step_ms", "mock_test_objective", "mock_trainable"]
