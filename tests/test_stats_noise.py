"""The noise budget (tune_vqvae.stats.noise) on known synthetic inputs."""

from __future__ import annotations

import numpy as np
import pytest

from tune_vqvae.stats.noise import images_for_share, split_eval_std, split_halves


def test_halves_recover_known_seed_and_eval_variances():
    """Seed sd 2, evaluation sd 3 per half (1.5^2 * 2 = 4.5 on the full set), 4000 runs."""
    rng = np.random.default_rng(0)
    t = 2.0 * rng.standard_normal(4000)
    a, b = 67 + t + 3.0 * rng.standard_normal(4000), 67 + t + 3.0 * rng.standard_normal(4000)
    budget = split_halves(a, b, n_eval=1000)
    assert budget.seed == pytest.approx(4.0, rel=0.08) and budget.eval == pytest.approx(4.5, rel=0.08)
    assert budget.eval_share == pytest.approx(4.5 / 8.5, abs=0.03)
    # 10% share: eval * 1000 / n <= seed / 9  ->  n = 9 * 4.5 / 4 * 1000 = 10125
    assert images_for_share(budget, 0.1) == pytest.approx(10125, rel=0.12)


def test_exact_small_inputs():
    budget = split_halves([10.0, 12.0, 14.0], [10.0, 12.0, 14.0], n_eval=500)  # halves agree: no eval noise
    assert budget.eval == 0.0 and budget.seed == pytest.approx(4.0) and images_for_share(budget) == 500
    budget = split_eval_std([1.0, 3.0], [1.0, 1.0], n_eval=200)  # total 2, eval 1, seed 1
    assert (budget.total, budget.seed, budget.eval) == (2.0, 1.0, 1.0)
    assert images_for_share(budget, 0.5) == 200 and images_for_share(budget, 0.2) == 800
    budget = split_eval_std([1.0, 1.2], [2.0, 2.0], n_eval=100)  # all evaluation noise
    assert budget.seed == 0.0 and budget.eval_share == 1.0
    with pytest.raises(ValueError, match="no training-seed variance"):
        images_for_share(budget)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="one score per run"):
        split_halves([1.0, 2.0], [1.0, 2.0, 3.0], 100)
    with pytest.raises(ValueError, match="finite"):
        split_eval_std([1.0, float("nan")], [1.0, 1.0], 100)
