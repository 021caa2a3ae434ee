"""Sequential confirmation (tune_vqvae.stats.sequential): the false-claim rate under the null
stays <= alpha with a look after every round (where a fixed 95% interval at every look
does not), the repeated intervals cover, clearly worse candidates leave the race; all of it
with the baseline's B runs a round too (its round's value the mean of its runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tune_vqvae.stats.equivalence import BETTER, EQUIVALENT, NOT_RESOLVED, WORSE
from tune_vqvae.stats.paired import paired_interval
from tune_vqvae.stats.sequential import (
    BASE,
    least_budget,
    max_rounds,
    nominal_levels,
    race,
    round_value,
    spending,
)


def _world(rng, means: dict, sds: dict, rho: float, baseline_runs: int = 1):
    """run_round for configs with these true means and spreads; same-seed correlation rho
    on the round's common seed; the baseline's other runs have seeds of their own."""
    def run_round(k, names):
        shared = rng.standard_normal()
        out = {c: means[c] + sds[c] * (math.sqrt(rho) * shared + math.sqrt(1 - rho) * rng.standard_normal())
               for c in [BASE, *names]}
        extra = means[BASE] + sds[BASE] * rng.standard_normal(baseline_runs - 1)  # own seeds: own shared part
        return out | {BASE: [out[BASE], *extra]}
    return run_round


def test_spending_and_levels_add_up_to_alpha():
    assert spending(1.0, 0.05) == pytest.approx(0.05) and spending(0.25, 0.05) < 0.0001
    levels = nominal_levels(10, 0.05)
    assert all(a <= b for a, b in zip(levels, levels[1:])) and 0.03 < levels[-1] < 0.05
    assert sum(levels) > 0.05  # nominal levels overlap (looks correlate): a union bound would waste them


@pytest.mark.slow
@pytest.mark.parametrize("rho, baseline_runs", [(0.0, 1), (0.8, 1), (0.0, 3), (0.8, 3)])
def test_false_claims_under_the_null_stay_below_alpha_with_peeking(rho, baseline_runs):
    """Two candidates as good as the baseline, unequal spreads, a look after every round."""
    rng = np.random.default_rng(int(rho > 0) + 10 * baseline_runs)
    means, sds = {BASE: 70.0, "a": 70.0, "b": 70.0}, {BASE: 3.6, "a": 1.2, "b": 2.0}
    n = 1500
    world = _world(rng, means, sds, rho, baseline_runs)
    false = sum(any(v in (BETTER, WORSE) for v in race(world, ["a", "b"], 36, min_effect=5.0,
                                                         baseline_runs=baseline_runs).verdicts.values())
                for _ in range(n))
    assert false / n <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / n)  # <= alpha up to Monte Carlo error


def test_a_fixed_95_interval_at_every_look_would_inflate_false_claims():
    """What the spending guards against: the same peeking with plain 95% t intervals."""
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(400):
        d = rng.standard_normal(20)
        hits += any(not paired_interval(d[:n], np.zeros(n)).contains(0.0) for n in range(3, 21))
    assert hits / 400 > 0.15  # about 0.25 with 18 looks


@pytest.mark.slow
@pytest.mark.parametrize("rho, baseline_runs", [(0.0, 1), (0.0, 3), (0.8, 3)])
def test_repeated_intervals_cover_at_the_stopping_time_with_a_gain(rho, baseline_runs):
    rng = np.random.default_rng(3 + baseline_runs)
    means, sds = {BASE: 70.0, "a": 66.5}, {BASE: 3.6, "a": 1.5}
    cover, better, runs = 0, 0, []
    for _ in range(800):
        r = race(_world(rng, means, sds, rho, baseline_runs), ["a"], 40, min_effect=2.0,
                 baseline_runs=baseline_runs)
        cover += r.percent["a"].contains(100 * (66.5 - 70.0) / 70.0)  # -5% (of the sample's mean: ~)
        better += r.verdicts["a"] == BETTER
        runs.append(r.runs + r.baseline_runs)
    assert cover / 800 >= 0.94
    assert better / 800 > 0.7 and np.mean(runs) < 40  # stops early once resolved


def test_a_clearly_worse_candidate_leaves_the_race_and_saves_runs():
    rng = np.random.default_rng(4)
    means, sds = {BASE: 70.0, "good": 70.0, "bad": 85.0}, {BASE: 1.0, "good": 1.0, "bad": 1.0}
    r = race(_world(rng, means, sds, 0.0), ["good", "bad"], 60, min_effect=1.0)
    assert r.dropped["bad"] in (BASE, "good") and "bad" not in r.alive
    assert len(r.values["bad"]) < len(r.values["good"]) and r.best() == "good"
    assert r.verdicts["good"] in (EQUIVALENT, NOT_RESOLVED)


def test_a_candidate_worse_than_another_but_not_than_the_baseline_is_dropped_by_it():
    rng = np.random.default_rng(5)
    means, sds = {BASE: 70.0, "a": 60.0, "b": 68.0}, {BASE: 8.0, "a": 0.3, "b": 0.3}
    r = race(_world(rng, means, sds, 0.0), ["a", "b"], 60, min_effect=1.0)
    assert r.dropped.get("b") == "a" and r.best() == "a"


def test_the_race_reports_the_measured_same_seed_correlation():
    rng = np.random.default_rng(6)
    r = race(_world(rng, {BASE: 70.0, "a": 70.0}, {BASE: 3.0, "a": 3.0}, 0.9), ["a"], 60, min_effect=0.5)
    r_a = r.correlation("a")
    assert r.rounds >= 10 and r_a is not None and r_a.low > 0.5 and r_a.contains(0.9)


def test_too_small_a_budget_is_named():
    with pytest.raises(ValueError, match="budget of at least 9"):
        race(lambda k, names: {}, ["a", "b"], 8, min_effect=5.0)
    with pytest.raises(ValueError, match="budget of at least 15"):  # 3 rounds of 3 baseline runs + 2
        race(lambda k, names: {}, ["a", "b"], 14, min_effect=5.0, baseline_runs=3)


def test_a_round_costs_the_baselines_runs_and_each_candidates():
    assert (max_rounds(20, 1), max_rounds(20, 1, 3), least_budget(1, 3)) == (10, 5, 12)
    rng = np.random.default_rng(8)
    r = race(_world(rng, {BASE: 70.0, "a": 70.0}, {BASE: 3.0, "a": 1.0}, 0.0, 3), ["a"], 20,
             min_effect=0.1, baseline_runs=3)
    assert r.stopped == "budget" and r.rounds == 5 and (r.baseline_runs, r.runs) == (15, 5)


def test_a_rounds_value_is_the_mean_of_the_runs_that_finished():
    assert round_value([1.0, float("nan"), 3.0]) == (2.0, 2) and round_value(4.0) == (4.0, 1)
    assert round_value([float("nan")]) is None and round_value([]) is None
    rng = np.random.default_rng(9)
    world = _world(rng, {BASE: 70.0, "a": 69.0}, {BASE: 3.0, "a": 1.0}, 0.0, 2)

    ran = {}

    def run_round(k, names):  # round 1: one of the baseline's runs failed, round 2: both
        out = world(k, names)
        out[BASE] = [out[BASE][0], np.nan] if k == 1 else [np.nan, np.nan] if k == 2 else out[BASE]
        ran[k] = out[BASE]
        return out

    r = race(run_round, ["a"], 30, min_effect=0.1, baseline_runs=2)
    assert 2 not in r.values[BASE] and r.values[BASE][1] == ran[1][0]
    assert r.values[BASE][0] == pytest.approx(np.mean(ran[0]))
    assert r.baseline_runs == 2 * r.rounds - 3 and len(r.pairs("a")[0]) == r.rounds - 1
