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
from tune_vqvae.bench.search_sim import AsyncHalving  # noqa: E402


@pytest.mark.parametrize("grace, max_t, rf", [(1, 3, 3), (2, 6, 3), (1, 9, 3), (1, 8, 2), (3, 30, 3),
                                               (1, 16, 4), (2, 5, 2)])
def test_async_halving_decides_as_rays_asha_scheduler(grace, max_t, rf):
    """The bench's copy of ASHA's rule against Ray's own public scheduler (one bracket, as
    ProtectedASHA runs it): the same STOP / CONTINUE for every result before the last epoch,
    trials arriving interleaved, with ties and values that improve or not with the epochs."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

    rng = random.Random(grace * 1000 + max_t * 10 + rf)
    ours = AsyncHalving(grace, max_t, rf)
    ray_asha = AsyncHyperBandScheduler(time_attr="epoch", metric="objective", mode="min",
                                       grace_period=grace, max_t=max_t, reduction_factor=rf, brackets=1)
    trials = [SimpleNamespace(trial_id=f"t{k}", config={}) for k in range(30)]
    for t in trials:
        ray_asha.on_trial_add(None, t)
    epoch_of = {t.trial_id: 0 for t in trials}
    running = list(trials)
    decisions = 0
    while running:
        t = rng.choice(running)  # asynchronous: any running trial reports next
        epoch_of[t.trial_id] += 1
        epoch = epoch_of[t.trial_id]
        value = round(rng.uniform(50, 150) / epoch ** rng.choice((0.0, 1.0)), rng.choice((0, 2)))  # ties
        said = ray_asha.on_trial_result(None, t, {"epoch": epoch, "objective": value})
        if epoch >= max_t:  # Ray ends a trial at max_t; the bench's runs end there themselves
            running.remove(t)
            continue
        assert ours.stops(t.trial_id, epoch, value) == (said == TrialScheduler.STOP), \
            f"the bench's ASHA rule drifted from Ray's: grace {grace}, max_t {max_t}, rf {rf}, epoch {epoch}"
        decisions += 1
        if said == TrialScheduler.STOP:
            running.remove(t)
    assert decisions > 30


@pytest.mark.slow
def test_search_bench_tiny_budget_writes_every_strategy(tmp_path, capsys):
    assert bench_main(["search", "--repeats", "1", "--budgets", "6", "--workers", "1",
                       "--paired-splits", "6+12", "--out-dir", str(tmp_path)]) == 0
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
    paired = doc["curves"]["no_gain"]["paired"]["6+12"]  # one race: 3..6 rounds of 2 runs
    assert paired["baseline_runs"] in (3, 4, 5, 6) and paired["loss_runs"] == 6 + paired["baseline_runs"]
    assert paired["runs_per_search"] == paired["loss_runs"] + paired["baseline_runs"]
    live = doc["curves"]["no_gain"]["live"]["6+12"]  # the search's race of its 1-3 merged candidates
    assert 3 <= live["baseline_runs"] <= 6 and live["loss_runs"] >= 6 + 3  # K = 12 // (1 + m), m = 1..3
    assert {"realistic/paired/6+12/power", "no_gain/paired/6+12/false_claims", "realistic/live/6+12/power",
            "no_gain/paired/6+12/equivalent", "no_gain/new/6/equivalent"} <= set(doc["targets"])
    assert "target no_gain/new/6" in capsys.readouterr().out


def test_search_bench_bad_input_exits_2_with_one_line(tmp_path, capsys):
    for argv, words in ((["--budgets", "x"], "give integers"), (["--curve", "nowhere:f"], "cannot be loaded"),
                        (["--strategies", "magic"], "unknown strategy"),
                        (["--paired-splits", "8+4"], "confirmation runs"),
                        (["--paired-splits", "8+10x3"], ">= 12 confirmation runs"),  # 3 rounds of 3 + 1
                        (["--paired-splits", "8+20xb"], "SEARCH+CONFIRMxBASELINE_RUNS"),
                        (["--curve", "realistic@2"], "rho"), (["--search-seeds", "each"], "--search-seeds")):
        with pytest.raises(SystemExit) as e:
            bench_main(["search", *argv, "--out-dir", str(tmp_path)])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    assert not any(tmp_path.iterdir())


def test_targets_are_judged_with_their_interval():
    """A ratio of medians or a rate over a few repeats is an estimate: the bar is met only
    where its whole 95% interval meets it, missed where none does, else not resolved."""
    from tune_vqvae.bench.search_score import _judged, median_ratio_interval, rate_interval

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


def test_search_bench_unwritable_out_dir_fails_before_the_run(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(SystemExit) as e:  # 10000 repeats: minutes if it ran first
        bench_main(["search", "--repeats", "10000", "--out-dir", str(a_file / "sub")])
    captured = capsys.readouterr()
    assert e.value.code == 2 and "not writable" in captured.err and "--out-dir" in captured.err
    assert captured.out == ""  # nothing ran


def test_live_decides_as_the_paired_race_of_the_recommended_w():
    """`live` replays the search's own race from rows (stats.race.race_of); on the same seeds
    `paired` of the recommended w runs stats.sequential.race directly: outcome for outcome equal,
    with the baseline on 3 runs a round too ("6+15x3"), whose runs count as the baseline's."""
    from tune_vqvae.bench.search_config import SearchBenchConfig
    from tune_vqvae.bench.search_sim import simulate

    bc = SearchBenchConfig(curves=["realistic@0.8"], repeats=3, strategies=["paired", "live"],
                           paired_splits=["6+12", "6+15x3"], epochs=3, grace=1)
    for repeat in range(3):
        out = simulate("realistic@0.8", repeat, bc)
        assert out["live"]["6+12"] == out["paired"]["6+12"], repeat
        assert out["live"]["6+15x3"] == out["paired"]["6+15x3"], repeat
        race_runs = out["live"]["6+15x3"]["loss_runs"] - 6
        assert out["live"]["6+15x3"]["baseline_runs"] == 3 * race_runs  # one candidate, 3 baseline runs


def test_the_search_stage_trains_one_seed_or_one_seed_per_trial():
    """--search-seeds: "shared" (as the search: every trial --seed) or "distinct" (issue 21's
    seed policy, measured by the benchmark)."""
    from tune_vqvae.bench.search_config import SearchBenchConfig
    from tune_vqvae.bench.search_sim import Sim
    from tune_vqvae.curves import load_curve

    for policy in ("shared", "distinct"):
        bc = SearchBenchConfig(curves=["realistic@0.8"], epochs=3, grace=1, search_seeds=policy)
        rows = Sim(load_curve("realistic@0.8"), bc, seed0=20_000).gp_search(7, pruned=True, early_stop=False)
        seeds = [r["seed"] for r in rows]
        assert seeds == ([20_000] * 7 if policy == "shared" else [20_500 + i for i in range(7)]), policy
