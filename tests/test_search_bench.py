"""The search benchmark (`python -m tune_vqvae.bench search`): its stopping rule is Ray's
ASHA, and the harness runs every strategy on a tiny budget and writes its JSON."""

from __future__ import annotations

import json
import os
import random
from types import SimpleNamespace

import numpy as np
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"

from tune_vqvae.bench import main as bench_main  # noqa: E402
from tune_vqvae.search_bench import AsyncHalving  # noqa: E402


def test_async_halving_decides_as_rays_asha():
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.schedulers.async_hyperband import _Bracket

    rng = random.Random(0)
    for grace, max_t in ((1, 3), (2, 6), (1, 9)):
        ours, ray_bracket = AsyncHalving(grace, max_t, 3), _Bracket(grace, max_t, 3, 0)
        for k in range(40):
            trial = SimpleNamespace(trial_id=f"t{k}")
            for epoch in range(1, max_t + 1):
                value = rng.uniform(50, 150) / epoch
                ray_stop = ray_bracket.on_result(trial, epoch, -value) == TrialScheduler.STOP
                assert ours.stops(trial.trial_id, epoch, value) == ray_stop, (grace, max_t, k, epoch)
                if ray_stop:
                    break


@pytest.mark.slow
def test_search_bench_tiny_budget_writes_every_strategy(tmp_path, capsys):
    assert bench_main(["search", "--repeats", "1", "--budgets", "6", "--workers", "1",
                       "--paired-splits", "6+10", "--out-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*-search-realistic+no_gain.json")
    doc = json.loads(path.read_text())
    assert set(doc["curves"]) == {"realistic", "no_gain"}
    assert doc["curves"]["realistic"]["gain_exists"] and not doc["curves"]["no_gain"]["gain_exists"]
    for curve in doc["curves"].values():
        for strategy in ("paper_grid", "old", "new", "new_asha"):
            s = curve[strategy]["6"]
            assert s["repeats"] == 1 and s["median_regret"] >= 0 and 0 <= s["false_claim_rate"] <= 1
    assert doc["curves"]["no_gain"]["new"]["6"]["runs_per_search"] > 6 + 3  # baseline seeds + confirmation
    assert "realistic/new/6" in doc["targets"] and "no_gain/new/6" in doc["targets"]
    paired = doc["curves"]["no_gain"]["paired"]["6+10"]  # one race: 3..5 rounds of 2 runs
    assert paired["baseline_runs"] in (3, 4, 5) and paired["loss_runs"] == 6 + paired["baseline_runs"]
    assert paired["runs_per_search"] == paired["loss_runs"] + paired["baseline_runs"]
    assert {"realistic/paired/6+10/power", "no_gain/paired/6+10/false_claims",
            "no_gain/paired/6+10/equivalent", "no_gain/new/6/equivalent"} <= set(doc["targets"])
    assert "target no_gain/new/6" in capsys.readouterr().out


def test_search_bench_bad_input_exits_2_with_one_line(tmp_path, capsys):
    for argv, words in ((["--budgets", "x"], "give integers"), (["--curve", "nowhere:f"], "cannot be loaded"),
                        (["--strategies", "magic"], "unknown strategy"),
                        (["--paired-splits", "8+4"], "confirmation runs"),
                        (["--curve", "realistic@2"], "rho")):
        with pytest.raises(SystemExit) as e:
            bench_main(["search", *argv, "--out-dir", str(tmp_path)])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    assert not any(tmp_path.iterdir())


def test_targets_are_judged_with_their_interval():
    """A ratio of medians or a rate over a few repeats is an estimate: the bar is met only
    where its whole 95% interval meets it, missed where none does, else not resolved."""
    from tune_vqvae.search_bench import _judged, median_ratio_interval, rate_interval

    rng = np.random.default_rng(0)
    old = rng.exponential(1.0, 400)
    low, high = median_ratio_interval(0.25 * old, old)  # paired: exactly a quarter in every world
    assert low == pytest.approx(0.25) and high == pytest.approx(0.25) and _judged(low, high, 0.5) is True
    low, high = median_ratio_interval(rng.exponential(1.0, 10), rng.exponential(1.0, 10))
    assert low < 0.5 < high and _judged(low, high, 0.5) is None  # 10 repeats resolve nothing
    low, high = median_ratio_interval(rng.exponential(1.0, 400), old)
    assert low > 0.5 and _judged(low, high, 0.5) is False
    low, high = rate_interval(1, 100)  # Wilson: 1 false claim in 100 searches
    assert low == pytest.approx(0.00177, abs=1e-4) and high == pytest.approx(0.0545, abs=1e-3)
    assert rate_interval(0, 100)[0] == 0.0 and rate_interval(0, 100)[1] < 0.05
