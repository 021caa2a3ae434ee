"""The noise budget (tune_vqvae.stats.noise) on known synthetic inputs."""

from __future__ import annotations

import numpy as np
import pytest

from tune_vqvae.stats.noise import (
    INTERVAL_RUNS,
    baseline_budget,
    budget_json,
    budget_text,
    halves_of,
    images_for_share,
    split_eval_std,
    split_halves,
)
from tune_vqvae.vocab import BASELINE, COMPLETED, SEARCH


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


def _row(half1, half2, role=BASELINE, epochs=4, images=1000.0):
    return {"role": role, "status": COMPLETED, "epochs_trained": epochs, "value": (half1 + half2) / 2,
            "value_half1": half1, "value_half2": half2, "value_images": images}


def test_the_baselines_budget_from_its_rows():
    """Only the baseline's full-length runs with both halves count; the figures are
    split_halves' on them, and the text says how many images would bring scoring to 10%."""
    halves = [(70.0, 74.0), (66.0, 63.0), (75.0, 73.0), (69.0, 71.0)]
    rows = [_row(a, b) for a, b in halves]
    rows += [_row(10.0, 90.0, role=SEARCH), _row(10.0, 90.0, epochs=2),  # not the baseline's / short
             {**_row(60.0, 61.0), "value_half2": None}]  # a run without halves
    b = baseline_budget(rows, epochs=4)
    want = split_halves(*zip(*halves), n_eval=1000)
    assert b == want and b.runs == 4
    d = budget_json(b)
    assert d["images_for_share"] == images_for_share(want, 0.1) and d["eval_share"] == want.eval_share
    assert f"{d['images_for_share']:,} evaluation images" in budget_text(d)
    assert baseline_budget(rows[:1], epochs=4) is None  # one run: no variance


def test_budget_text_when_scoring_is_small_or_all():
    small = budget_json(split_halves([60.0, 70.0, 80.0], [60.1, 70.0, 79.9], n_eval=500))
    assert small["eval_share"] < 0.1 and "more seeds would" in budget_text(small)
    alone = budget_json(split_halves([70.0, 71.0, 69.0], [71.0, 70.0, 70.0], n_eval=500))
    assert alone["images_for_share"] is None and "no training-seed variance" in budget_text(alone)


def test_halves_of_reads_the_objectives_columns():
    metrics = {"swd_half1": 3.0, "swd_half2": 4.0, "swd_images": 1000.0, "fid_half1": 9.0}
    assert halves_of(metrics, "swd") == {"value_half1": 3.0, "value_half2": 4.0, "value_images": 1000.0}
    assert halves_of(metrics, "val_psnr") == dict.fromkeys(("value_half1", "value_half2", "value_images"))
    assert halves_of({"fid_half1": float("nan")}, "fid")["value_half1"] is None


def test_the_scoring_share_has_a_bootstrap_interval_that_covers_it():
    """13 runs (the CIFAR race's baseline), a scoring share of 0.22: the 95% percentile
    bootstrap over runs covers it in about 90% of 200 simulated searches (measured 91-93% at
    9-30 runs, 2026-12-01: a bootstrap of few runs covers a little less than its level)."""
    rng = np.random.default_rng(5)
    true, covered = (1.5**2 / 2) / (4.0 + 1.5**2 / 2), 0
    for _ in range(200):
        t = 2.0 * rng.standard_normal(13)
        b = split_halves(t + 1.5 * rng.standard_normal(13), t + 1.5 * rng.standard_normal(13), 1000)
        low, high = b.share_interval
        assert 0 <= low <= high <= 1
        covered += low <= true <= high
    assert 0.85 <= covered / 200 <= 0.99
    d = budget_json(b)
    assert d["eval_share_interval95"] == [low, high]
    assert budget_text(d).startswith(f"{100 * b.eval_share:.0f}% [{100 * low:.0f}, {100 * high:.0f}] of the")
    old = {k: v for k, v in d.items() if k != "eval_share_interval95"}  # a search before the interval
    assert budget_text(old).startswith(f"{100 * b.eval_share:.0f}% of the")


def test_few_runs_give_no_scoring_share_interval_and_row_order_does_not_move_it():
    """Below INTERVAL_RUNS runs the bootstrap has too few distinct resamples to mean anything:
    no interval, and the text says the share alone; with enough runs, the search's rows and
    the report's (another order) give one interval."""
    rng = np.random.default_rng(1)
    t = rng.standard_normal(INTERVAL_RUNS)
    a, b = t + 0.5 * rng.standard_normal(t.size), t + 0.5 * rng.standard_normal(t.size)
    few = split_halves(a[:-1], b[:-1], 1000)
    assert few.share_interval is None and budget_json(few)["eval_share_interval95"] is None
    assert budget_text(budget_json(few)).startswith(f"{100 * few.eval_share:.0f}% of the")
    rows = [{"role": BASELINE, "status": COMPLETED, "epochs": 3, "seed": k, "value": (x + y) / 2,
             "value_half1": x, "value_half2": y, "value_images": 1000}
            for k, (x, y) in enumerate(zip(a, b, strict=True))]
    forward, backward = baseline_budget(rows, 3), baseline_budget(rows[::-1], 3)
    assert forward.share_interval is not None
    assert forward.share_interval == backward.share_interval
