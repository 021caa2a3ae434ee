"""The sequential confirmation read back from results rows (tune_vqvae.stats.race): the
replay of a race's rows decides exactly what the race decided live, so the search, --resume
and the report agree; verdicts come from each candidate's last look at its nominal level."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tune_vqvae.stats import search_answer
from tune_vqvae.stats.race import RaceSettings, race_comparisons, race_json, race_of, race_text
from tune_vqvae.stats.sequential import BASE, FIRST_LOOK, nominal_levels, race
from tune_vqvae.vocab import race_seeds

EPOCHS = 4


def _row(name: str, k: int, value: float, status: str = "COMPLETED", seed: int | None = None) -> dict:
    loss, _, candidate = name.partition(":")
    base = name == BASE
    return {"experiment": f"r{k:02d}-confirm", "loss": "mse" if base else loss,
            "role": "baseline" if base else "confirm", "with_mse": True, "w": None if base else 0.5,
            "value": value, "status": status, "epochs_trained": EPOCHS, "seed": seed or 2000 + k,
            "candidate": None if base else candidate, "round": k}


def _live_race(rng, means: dict, sds: dict, budget: int, min_effect: float, baseline_runs: int = 1):
    """A race run live (as the benchmark does) that also writes the rows a search would; the
    baseline's runs past the first on seeds of their own (race_seeds)."""
    rows = []

    def run_round(k, names):
        shared = rng.standard_normal()
        out = {c: means[c] + sds[c] * (0.7 * shared + 0.71 * rng.standard_normal()) for c in [BASE, *names]}
        rows.extend(_row(c, k, v) for c, v in out.items())
        extra = means[BASE] + sds[BASE] * rng.standard_normal(baseline_runs - 1)
        rows.extend(_row(BASE, k, v, seed=s) for v, s in zip(extra, race_seeds(0, k, baseline_runs)[1:]))
        return out | {BASE: [out[BASE], *extra]}

    names = sorted(c for c in means if c != BASE)
    return race(run_round, names, budget, min_effect, baseline_runs=baseline_runs), rows


@pytest.mark.parametrize("seed", range(12))
def test_the_replay_of_the_rows_decides_what_the_live_race_decided(seed):
    rng = np.random.default_rng(seed)
    m, b = 1 + seed % 3, 1 + seed // 4  # 1..3 candidates, 1..3 baseline runs a round
    means = {BASE: 70.0, **{f"gmsd:c{i}": 70.0 - rng.uniform(-6, 6) for i in range(m)}}
    sds = {c: rng.uniform(0.5, 4.0) for c in means}
    live, rows = _live_race(rng, means, sds, budget=(b + m) * 12, min_effect=3.0, baseline_runs=b)
    settings = RaceSettings((b + m) * 12, 3.0, baseline_runs=b)
    raced = race_of(rows, settings, epochs=EPOCHS, lower_is_better=True)
    again = raced.state
    assert (again.rounds, again.alive, again.verdicts, again.dropped, again.stopped) == \
        (live.rounds, live.alive, live.verdicts, live.dropped, live.stopped)
    assert (again.runs, again.baseline_runs) == (live.runs, live.baseline_runs) == \
        (sum(r["role"] == "confirm" for r in rows), b * live.rounds)
    assert {c: p.estimate for c, p in again.percent.items()} == \
        pytest.approx({c: p.estimate for c, p in live.percent.items()})


def test_a_verdict_is_the_candidates_last_look_at_that_looks_level():
    rng = np.random.default_rng(3)
    means = {BASE: 70.0, "gmsd:recommended": 66.0, "gmsd:best_paper": 76.0}
    sds = {BASE: 1.0, "gmsd:recommended": 1.0, "gmsd:best_paper": 1.0}
    live, rows = _live_race(rng, means, sds, budget=60, min_effect=2.0)
    assert live.dropped.get("gmsd:best_paper")  # clearly worse: it left early
    raced = race_of(rows, RaceSettings(60, 2.0), epochs=EPOCHS, lower_is_better=True)
    comps = race_comparisons(raced, "gmsd", EPOCHS)
    paper = comps["best_paper_vs_baseline"]
    look = live.last_look["gmsd:best_paper"]
    assert paper["round"] == look < live.rounds and paper["dropped_by"] in ("baseline", "recommended")
    assert paper["level"] == pytest.approx(1 - nominal_levels(60 // 3, 0.05 / 2)[look - FIRST_LOOK])
    assert paper["verdict"] == live.verdicts["gmsd:best_paper"] and paper["n_candidate"] == look
    assert comps["recommended_vs_baseline"]["verdict"] == "better"
    assert comps["recommended_vs_best_paper"]["verdict"] == "better"


def test_a_failed_run_is_a_hole_and_pairs_form_on_common_rounds():
    rng = np.random.default_rng(0)
    rows = []
    for k in range(6):
        base = 70 + rng.normal()
        rows += [_row(BASE, k, base), _row("gmsd:recommended", k, base - 5 + 0.1 * rng.normal(),
                                           "ERROR" if k == 1 else "COMPLETED")]
    raced = race_of(rows, RaceSettings(12, 3.0), epochs=EPOCHS, lower_is_better=True)
    c = race_comparisons(raced, "gmsd", EPOCHS)["recommended_vs_baseline"]
    assert raced.state.stopped == "resolved" and 1 not in raced.state.values["gmsd:recommended"]
    assert c["pairs"] == c["n_candidate"] == raced.state.rounds - 1 and c["verdict"] == "better"


def test_a_round_averages_the_baseline_runs_that_finished():
    """B = 2: round 1 lost one baseline run (its value is the other's), round 2 both (a hole)."""
    rows = []
    for k in range(4):
        base = [70.0 + k, 72.0 + k]
        status = {1: ["COMPLETED", "ERROR"], 2: ["ERROR", "ERROR"]}.get(k, ["COMPLETED"] * 2)
        rows += [_row(BASE, k, v, s, seed) for v, s, seed in zip(base, status, race_seeds(0, k, 2))]
        rows.append(_row("gmsd:recommended", k, 66.0 + k + 0.1 * (-1) ** k))
    raced = race_of(rows, RaceSettings(15, 3.0, baseline_runs=2), epochs=EPOCHS, lower_is_better=True)
    assert raced.state.values[BASE] == {0: 71.0, 1: 71.0, 3: 74.0}
    assert raced.state.baseline_runs == 5 and raced.state.rounds == 4
    race = race_json(raced)
    assert race["baseline_runs_per_round"] == 2 and "(5 baseline, 2 a round)" in race_text(race)


def test_a_round_whose_runs_all_failed_still_counts():
    """The budget was spent on it: the race moves on (a live search would else re-run it forever)."""
    rows = [_row(n, k, 70.0 - (5 if n != BASE else 0) + 0.3 * k, "ERROR" if k == 3 else "COMPLETED")
            for k in range(4) for n in (BASE, "gmsd:recommended")]
    raced = race_of(rows, RaceSettings(40, 1.0), epochs=EPOCHS, lower_is_better=True)
    assert raced.state.rounds == 4 and 3 not in raced.state.values[BASE]


def test_the_search_answer_carries_the_race_and_is_strict_json():
    rng = np.random.default_rng(1)
    means = {BASE: 70.0, "gmsd:recommended": 69.0}
    sds = {BASE: 3.0, "gmsd:recommended": 1.0}
    _, rows = _live_race(rng, means, sds, budget=20, min_effect=5.0)
    for r in rows:
        r["test_value"] = r["value"] + 1.0
    ans = search_answer(rows, ["gmsd"], epochs=EPOCHS, bounds={"gmsd": (1e-3, 10.0)}, lower_is_better=True,
                        n_per_config=3, min_effect=5.0, race=RaceSettings(20, 5.0))
    text = json.dumps(ans, allow_nan=False)  # results.json is strict JSON: no inf from a look
    race_part = json.loads(text)["race"]
    assert race_part["runs"] == len(rows) <= 20 and race_part["stopped"] in ("resolved", "budget")
    assert ans["baseline"]["n_per_config"] == race_part["rounds"]
    c = ans["losses"]["gmsd"]["comparisons"]["recommended_vs_baseline"]
    assert c["method"] == "paired-t (repeated)" and c["level"] > 0.95
    assert ans["losses"]["gmsd"]["comparisons_test"]["recommended_vs_baseline"]["diff"] == \
        pytest.approx(c["diff"])  # test scores 1 higher on both sides: the same difference
    assert math.isfinite(c["largest_gain"])
    # the same rows without a race's settings: the fixed-stage answer, no "race"
    assert "race" not in search_answer(rows, ["gmsd"], epochs=EPOCHS, bounds={"gmsd": (1e-3, 10.0)},
                                       lower_is_better=True, n_per_config=3)
