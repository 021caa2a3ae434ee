"""The sampler of w under a distortion budget (issue 24): the shadow study GPSampler fits gets
every completed trial's slack as an Optuna constraint (all or none), so it proposes within the
budget; without one it proposes as before."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from tune_vqvae import compat
from tune_vqvae.constraints import parse
from tune_vqvae.sampler import CONSTRAINT_VALUE, WeightSampler

DIST = optuna.distributions.FloatDistribution(1e-3, 10.0, log=True)
WITH_MSE = optuna.distributions.CategoricalDistribution([True, False])
BUDGET, BASELINE_PSNR = parse("val_psnr >= -0.5"), 29.0  # within it: PSNR >= 28.5


def psnr(w: float) -> float:
    """Falls with w: 28.5 dB (the bound) at w = 0.1."""
    return BASELINE_PSNR - 0.5 * (math.log10(w) + 3) / 2


def study_of(ws, sampler: WeightSampler, *, attrs=True, running=()) -> optuna.Study:
    """A study of the measured no-MSE arm and completed with-MSE trials at `ws`: the objective
    falls with w (the unconstrained best is the largest w), each with its PSNR as the search
    keeps it."""
    study = optuna.create_study(sampler=sampler)
    study.add_trial(optuna.trial.create_trial(  # the no-MSE arm, measured: the sampler asks for w
        params={"with_mse": False}, distributions={"with_mse": WITH_MSE}, value=2.0))
    for i, w in enumerate(ws):
        user = {CONSTRAINT_VALUE: psnr(w)} if attrs is True or i in attrs else {}
        study.add_trial(optuna.trial.create_trial(
            params={"with_mse": True, "w": w}, distributions={"with_mse": WITH_MSE, "w": DIST},
            value=1.0 - 0.1 * math.log10(w), user_attrs=user))
    for w in running:
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING, params={"with_mse": True, "w": w},
            distributions={"with_mse": WITH_MSE, "w": DIST}))
    return study


@pytest.fixture
def shadows(monkeypatch):
    """The shadow studies the sampler builds, as it built them."""
    built = []
    make = WeightSampler._shadow

    def spy(self, *args, **kwargs):
        built.append(make(self, *args, **kwargs))
        return built[-1]

    monkeypatch.setattr(WeightSampler, "_shadow", spy)
    return built


def propose(study: optuna.Study) -> float:
    trial = study.ask()
    assert trial.suggest_categorical("with_mse", [True, False]) is True
    return trial.suggest_float("w", 1e-3, 10.0, log=True)


WS = list(np.logspace(-3, 1, 7))  # 0.001 .. 10: three within the budget, four over it


def test_every_completed_shadow_trial_carries_its_slack_and_pending_ones_none(shadows):
    sampler = WeightSampler(seed=0, constraint=BUDGET, baseline_mean=BASELINE_PSNR)
    w = propose(study_of(WS, sampler, running=[0.05]))
    shadow = shadows[-1]
    done = [t for t in shadow.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == len(WS)
    for t in done:  # slack = bound - PSNR: <= 0 within the budget
        assert compat.stored_constraints(t) == [pytest.approx(28.5 - psnr(t.params["w"]))]
    pending = [t for t in shadow.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len(pending) == 2 and all(not compat.stored_constraints(t) for t in pending)  # + the asked one
    # constrained log EI: the objective improves with w, but the budget ends at w = 0.1
    assert w < 0.3, w


def test_without_a_budget_the_proposal_runs_to_the_largest_w(shadows):
    w = propose(study_of(WS, WeightSampler(seed=0)))
    assert all(not compat.stored_constraints(t) for t in shadows[-1].trials)
    assert w > 1.0, w


def test_a_completed_trial_without_the_value_leaves_the_whole_shadow_unconstrained(shadows):
    sampler = WeightSampler(seed=0, constraint=BUDGET, baseline_mean=BASELINE_PSNR)
    propose(study_of(WS, sampler, attrs=set(range(1, len(WS)))))  # trial 0 told before the budget
    assert all(not compat.stored_constraints(t) for t in shadows[-1].trials)


def test_a_budget_needs_the_baselines_mean_and_survives_pickling():
    import pickle

    with pytest.raises(ValueError, match="baseline's mean"):
        WeightSampler(constraint=BUDGET)
    s = pickle.loads(pickle.dumps(WeightSampler(seed=3, constraint=BUDGET, baseline_mean=BASELINE_PSNR)))
    assert (s.constraint, s.baseline_mean, s.seed) == (BUDGET, BASELINE_PSNR, 3)
