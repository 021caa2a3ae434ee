"""WeightSearch tells Optuna what each trial was (issue 12): full-length COMPLETE, stopped
early PRUNED with its intermediate values, diverged or crashed FAIL; replicates of a w get
their own seeds. Unit tests on an in-memory study, no Ray cluster."""

from __future__ import annotations

import os

import optuna

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters

from tune_vqvae.search import WeightSampler, WeightSearch, WeightSpace  # noqa: E402
from tune_vqvae.search._spaces import SearchSpace  # noqa: E402

STATES = optuna.trial.TrialState


def searcher(replicates=1, points=()):
    space = SearchSpace(path="-", losses=["gmsd"], low=1e-3, high=10.0, points=list(points))
    return WeightSearch(space=WeightSpace(space), metric="objective", mode="min",
                        points_to_evaluate=list(points) or None, sampler=WeightSampler(seed=0),
                        epochs=3, replicates=replicates, run_seed=5)


def report(s, trial_id, epoch, value, **extra):
    result = {"objective": value, "epoch": epoch, "training_iteration": epoch, **extra}
    s.on_trial_result(trial_id, result)
    return result


def test_stopped_trials_are_pruned_and_never_enter_the_sampler():
    s = searcher(points=[{"with_mse": True, "w": 1.0}, {"with_mse": True, "w": 0.5},
                         {"with_mse": True, "w": 0.25}, {"with_mse": True, "w": 0.1}])
    for tid in "abcd":
        s.suggest(tid)
    for epoch in (1, 2, 3):
        last = report(s, "a", epoch, 10.0 - epoch)
    s.on_trial_complete("a", last)
    # b: ASHA stops it after epoch 1; Tune withholds that result from the searcher
    s.on_trial_complete("b", {"objective": 500.0, "epoch": 1, "training_iteration": 1})
    report(s, "c", 1, 9.0)
    s.on_trial_complete("c", {"objective": float("nan"), "epoch": 2, "diverged": 1.0, "error": "nan"})
    report(s, "d", 1, 9.0)
    s.on_trial_complete("d", {"objective": 9.0, "epoch": 1, "training_iteration": 1}, error=True)
    study = s._ot_study
    a, b, c, d = study.trials
    assert (a.state, a.value) == (STATES.COMPLETE, 7.0)
    assert b.state == STATES.PRUNED and b.intermediate_values == {1: 500.0}
    assert b.user_attrs["stopped_at_epoch"] == 1
    assert c.state == STATES.FAIL and c.user_attrs["diverged_at_epoch"] == 2
    assert d.state == STATES.FAIL and d.user_attrs["error_at_epoch"] == 1
    # the early value is not a completed observation: the GP's data are the COMPLETE trials
    completed = study.get_trials(states=(STATES.COMPLETE,))
    assert [t.value for t in completed] == [7.0]
    s.suggest("e")  # the sampler runs with the pruned trial as pending (no error, no value)
    assert study.trials[-1].params["w"] != 0.5 or study.trials[-1].state == STATES.RUNNING


def test_each_proposed_w_runs_with_replicate_seeds():
    s = searcher(replicates=3, points=[{"with_mse": True, "w": 0.5}])
    params = [s.suggest(t) for t in ("a", "b", "c", "d")]
    # every trial on a seed of its own: vocab.search_seed(run seed 5, its trial number)
    assert params[0] == {"with_mse": True, "w": 0.5, "train": {"seed": 505}}
    assert params[1] == {"with_mse": True, "w": 0.5, "train": {"seed": 506}}
    assert params[2] == {"with_mse": True, "w": 0.5, "train": {"seed": 507}}
    assert params[3]["train"] == {"seed": 508}  # the sampler's next proposal
    trials = s._ot_study.trials
    asked = [t.user_attrs for t in trials if t.state == STATES.RUNNING]
    assert [(a["replicate"], a["seed"]) for a in asked] == [(0, 505), (1, 506), (2, 507), (0, 508)]
    # the proposal's two replicates wait in the queue, ahead of any new proposal
    assert [t.user_attrs for t in trials if t.state == STATES.WAITING] == [{"replicate": 1}, {"replicate": 2}]
