"""The sequential confirmation in a live search (--confirm-budget, issue 21): one experiment
per look, round k on seed --seed + 2000 + k for the baseline and every candidate still in
the race, stopping when every verdict is resolved; --resume adds a race to a finished search
and refuses another budget for a started one; the report restates the race's answer."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters
from processes import kill_session, run, search_env  # noqa: E402
from test_report_agrees import _same  # noqa: E402
from waiting import Lines  # noqa: E402

from tune_vqvae.stats.race import RaceSettings, race_of  # noqa: E402
from tune_vqvae.stats.sequential import FIRST_LOOK  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SEARCH = [sys.executable, "-m", "tune_vqvae.search"]
COMMON = ["--mock", "--loss", "gmsd", "--epochs", "2", "--num-samples", "6", "--baseline-seeds", "2"]


def _rows(exp) -> list[dict]:
    rows = pd.read_csv(exp / "results.csv").to_dict("records")
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows]


@pytest.mark.slow
def test_a_race_runs_one_round_per_look_for_the_candidates_left(ray_cluster, tmp_path, capsys):
    assert run([*COMMON, "--mock-curve", "realistic", "--confirm-budget", "24",
                "--storage-path", str(tmp_path), "--name", "race"]) == 0
    exp = tmp_path / "race"
    doc = json.loads((exp / "results.json").read_text())
    race = doc["answer"]["race"]
    rows = _rows(exp)
    raced = [r for r in rows if r["round"] is not None]
    assert race["stopped"] in ("resolved", "budget") and race["runs"] == len(raced) <= 24
    # round k: seed 2000 + k, in the experiment of its look (rounds 0..2 together in r03-confirm)
    for r in raced:
        k = int(r["round"])
        assert r["seed"] == 2000 + k and r["experiment"] == f"r{max(k + 1, FIRST_LOOK):02d}-confirm"
    assert not any(r["experiment"] in ("gmsd-confirm", "baseline-confirm") for r in rows)
    # each round after the first look ran the baseline and exactly the candidates left after it
    settings = RaceSettings(24, 5.0)
    for k in range(FIRST_LOOK, race["rounds"]):
        before = race_of([r for r in rows if r["round"] is None or r["round"] < k], settings, epochs=2,
                         lower_is_better=True)
        ran = {f"{r['loss']}:{r['candidate']}" for r in raced if r["round"] == k and r["role"] == "confirm"}
        assert ran == set(before.state.alive) and not before.state.stopped, k
        assert sum(r["role"] == "baseline" for r in raced if r["round"] == k) == 1
    assert "sequential confirmation:" in capsys.readouterr().out

    from analysis.load import choose_objective, load, saved_objective
    from analysis.tables import analyse

    experiments, trials = load([str(exp)])
    a = analyse(trials, choose_objective(trials, None, saved_objective(experiments)))
    _same(a.answer["race"], race, "race")
    _same(a.answer["losses"]["gmsd"]["comparisons"], doc["answer"]["losses"]["gmsd"]["comparisons"], "gmsd")


@pytest.mark.slow
def test_a_clear_gain_ends_the_race_early_and_resume_keeps_its_budget(ray_cluster, tmp_path, capsys):
    """The mock's known curve: a gain far beyond the noise. A finished search without a race
    gets one by --resume --confirm-budget, which stops at its first look, resolved, with runs
    of the budget left; a second --resume with another budget is refused (exit 2)."""
    s = ["--storage-path", str(tmp_path), "--name", "k"]
    assert run([*COMMON, "--confirm-seeds", "0", *s]) == 0
    exp = tmp_path / "k"
    assert "race" not in json.loads((exp / "results.json").read_text())["answer"]
    assert run(["--resume", str(exp), "--confirm-budget", "16"]) == 0
    doc = json.loads((exp / "results.json").read_text())
    race = doc["answer"]["race"]
    assert race["stopped"] == "resolved" and race["rounds"] == FIRST_LOOK and race["runs"] < 16
    comps = doc["answer"]["losses"]["gmsd"]["comparisons"]
    assert comps["recommended_vs_baseline"]["verdict"] == "better"
    assert comps["recommended_vs_baseline"]["level"] > 0.95  # the look's level, not a fresh 95%
    assert json.loads((exp / "search.json").read_text())["confirm_budget"] == 16
    capsys.readouterr()
    assert run(["--resume", str(exp), "--confirm-budget", "20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has started with --confirm-budget 16" in err[0]
    assert run(["--resume", str(exp), "--confirm-seeds", "3"]) == 2  # the fixed stage, as when new
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the fixed stage would set its verdicts aside" in err[0]
    assert json.loads((exp / "results.json").read_text()) == doc  # nothing written


@pytest.mark.slow
def test_a_race_killed_mid_look_resumes_where_it_stood(tmp_path):
    """kill -9 of the driver while r04-confirm runs, then --resume: r03's runs are restored,
    not re-run; the race goes on from its rows (each round ran the candidates left by the
    look before it) and every raced run is in the results once."""
    ray_tmp = tempfile.mkdtemp(prefix="rq", dir="/tmp")  # short: Ray's socket paths must fit
    env = search_env(ray_tmp)
    exp = tmp_path / "q"
    argv = [*SEARCH, *COMMON, "--mock-curve", "realistic", "--confirm-budget", "24", "--num-cpus", "2",
            "--max-concurrent", "2", "--storage-path", str(tmp_path), "--name", "q",
            "--faults", json.dumps({"sleep_s": 0.4})]
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    output = Lines(proc.stdout)
    try:
        output.wait_for(lambda lines: any(s.startswith("[r04-confirm]") for s in lines), 300,
                        "round 3 running")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid)
        output.close()
    r03 = {d.name for d in (exp / "r03-confirm").iterdir() if d.is_dir()}
    resumed = subprocess.Popen([*SEARCH, "--resume", str(exp), "--num-cpus", "2"], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = resumed.communicate(timeout=400)
    finally:
        kill_session(resumed.pid)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert resumed.returncode == 0, out[-3000:] + err[-3000:]
    assert not [s for s in out.splitlines() if s.startswith("[r03-confirm]")]  # restored, not re-run
    rows = _rows(exp)
    raced = [r for r in rows if r["round"] is not None]
    assert {Path(r["path"]).name for r in raced if r["experiment"] == "r03-confirm"} == r03
    assert len({(r["round"], r["loss"], r["candidate"]) for r in raced}) == len(raced)  # each run once
    race = json.loads((exp / "results.json").read_text())["answer"]["race"]
    assert race["stopped"] and race["runs"] == len(raced)
    for k in range(FIRST_LOOK, race["rounds"]):
        before = race_of([r for r in rows if r["round"] is None or r["round"] < k], RaceSettings(24, 5.0),
                         epochs=2, lower_is_better=True)
        ran = {f"{r['loss']}:{r['candidate']}" for r in raced if r["round"] == k and r["role"] == "confirm"}
        assert ran == set(before.state.alive), k


@pytest.mark.slow
def test_the_baseline_runs_its_own_seeds_besides_the_common_one(ray_cluster, tmp_path, capsys):
    """--race-baseline-runs 2: round k trains the baseline on seeds 2000 + k (the candidate's)
    and 3000 + k (its own); a round costs 3 runs of the budget (9: one look after 3 rounds);
    a started race refuses another B on --resume."""
    assert run([*COMMON, "--mock-curve", "realistic", "--confirm-budget", "9", "--race-baseline-runs", "2",
                "--storage-path", str(tmp_path), "--name", "b2"]) == 0
    exp = tmp_path / "b2"
    race = json.loads((exp / "results.json").read_text())["answer"]["race"]
    raced = [r for r in _rows(exp) if r["round"] is not None]
    spent = (race["rounds"], race["runs"], race["baseline_runs"], race["baseline_runs_per_round"])
    assert spent == (3, 9, 6, 2)
    for k in range(3):
        seeds = {r["role"]: set() for r in raced}
        for r in raced:
            if r["round"] == k:
                seeds[r["role"]].add(int(r["seed"]))
        assert seeds == {"baseline": {2000 + k, 3000 + k}, "confirm": {2000 + k}}, k
    assert json.loads((exp / "search.json").read_text())["race_baseline_runs"] == 2
    capsys.readouterr()
    assert run(["--resume", str(exp), "--race-baseline-runs", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has started with --race-baseline-runs 2" in err[0]
