"""The sampler of w: Gaussian-process Bayesian optimisation on log w (Optuna's GPSampler).

Plain Optuna (no ray): the search (`tune_vqvae.search`, through Ray Tune's OptunaSearch) and
the search benchmark (`python -m tune_vqvae.bench search`, in-process) drive the same
sampler, so the benchmark measures what the search does.
"""

from __future__ import annotations

import math
import random

import optuna


class WeightSampler(optuna.samplers.BaseSampler):
    """Gaussian-process Bayesian optimisation of log w, fitted on the mse + w * L trials.

    Why a GP: the space is one continuous dimension (plus the categorical) and the budget
    is tens of trials, each a full training run. TPE samples at random for its first 10
    trials, which is most of such a budget; Optuna's GPSampler models the objective as a
    smooth function of log w and picks each next w by expected improvement from the 3rd
    completed trial on, accounting for the trials still running (so concurrent trials get
    different w).

    Why not GPSampler on the whole space: `w` only exists for with-MSE trials, and the GP
    models only the parameters every trial has, so the no-MSE trials would hide `w` from it
    and it would sample w at random. Here the GP sees exactly the with-MSE trials: finished
    ones with their value, running and early-stopped (PRUNED) ones as pending.
    The no-MSE variant has no free parameter: once it has been measured (it
    is one of the paper's points) the categorical chooses "with MSE"; re-running it would
    repeat the same seeded run.
    """

    def __init__(self, seed: int = 0, n_startup_trials: int = 3):
        self.seed = seed
        self.n_startup_trials = n_startup_trials

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
        if param_name == "with_mse":
            choices = list(param_distribution.choices)
            measured_no_mse = any(
                t.params.get("with_mse") is False
                or t.system_attrs.get("fixed_params", {}).get("with_mse") is False
                for t in others if t.state != optuna.trial.TrialState.FAIL
            )
            if True in choices and (measured_no_mse or len(choices) == 1):
                return True
            return random.Random((self.seed * 7919 + trial.number) % 2**32).choice(choices)
        if param_name != "w":
            raise ValueError(f"WeightSampler knows only with_mse and w, not {param_name!r}")
        return self._sample_w(study, trial, others, param_distribution)

    def _sample_w(self, study, trial, others, dist):
        states = optuna.trial.TrialState
        shadow = optuna.create_study(
            direction=study.direction,
            sampler=optuna.samplers.GPSampler(
                seed=(self.seed * 7919 + trial.number) % 2**32,
                n_startup_trials=self.n_startup_trials,
                warn_independent_sampling=False,
            ),
        )
        for t in others:
            if "w" not in t.params or t.params.get("with_mse") is not True:
                continue
            if t.state == states.COMPLETE and t.value is not None and math.isfinite(t.value):
                shadow.add_trial(optuna.trial.create_trial(
                    params={"w": t.params["w"]}, distributions={"w": dist}, value=t.value))
            elif t.state in (states.RUNNING, states.PRUNED):
                # A pruned (early-stopped) w enters as pending, never with its early value (that
                # is the objective at another fidelity): the joint EI of pending points keeps
                # the sampler from proposing that w again, which ASHA would prune again.
                shadow.add_trial(optuna.trial.create_trial(
                    state=states.RUNNING, params={"w": t.params["w"]}, distributions={"w": dist}))
        return shadow.ask({"w": dist}).params["w"]
