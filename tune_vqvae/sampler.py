"""The sampler of w: Gaussian-process Bayesian optimisation on log w (Optuna's GPSampler).

Plain Optuna (no ray): the search (`tune_vqvae.search`, through Ray Tune's OptunaSearch) and
the search benchmark (`python -m tune_vqvae.bench search`, in-process) drive the same
sampler, so the benchmark measures what the search does.
"""

from __future__ import annotations

import math
import random
import re

import optuna

from . import compat
from .constraints import Constraint

JOINT_KEY = re.compile(r"w[0-9]+")  # a joint loss's weights: w1, w2, ... (vocab.weight_keys)
# The user attr of a completed trial holding its constrained metric's last reported value
# (`search._optuna.WeightSearch` sets it; a budget's slack is computed from it here).
CONSTRAINT_VALUE = "constraint_value"


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
    is one of the paper's points) the categorical chooses "with MSE": the budget is better
    spent on w, which the question is about (more seeds of it: --seeds).

    Two objectives (a front, --objective twice: the study has two directions): the shadow
    study has the same two, so GPSampler proposes by log expected hypervolume improvement
    (one GP per objective over log w), spreading the w along the front instead of piling
    them at one objective's optimum.

    With a distortion budget (`constraint`, relative to the MSE baseline's `baseline_mean`),
    every completed trial enters the shadow study with its slack (`Constraint.slack` of its
    `CONSTRAINT_VALUE` user attr) as an Optuna constraint, so the GP proposes by constrained
    log EI: expected improvement over the best feasible value, times P(feasible) from a second
    GP of the slack. All or none: where a completed trial lacks the value (one told before
    the budget was set), the shadow has no constraints at all (Optuna needs them on every
    completed trial).
    """

    def __init__(self, seed: int = 0, n_startup_trials: int = 3, constraint: Constraint | None = None,
                 baseline_mean: float | None = None):
        if (constraint is None) != (baseline_mean is None):
            raise ValueError("a constraint needs the MSE baseline's mean (and the mean a constraint)")
        self.seed = seed
        self.n_startup_trials = n_startup_trials
        self.constraint, self.baseline_mean = constraint, baseline_mean
        self._proposed: dict[tuple[str, int], dict] = {}  # a joint proposal's remaining weights

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
                or compat.fixed_params(t).get("with_mse") is False
                for t in others
                if t.state != optuna.trial.TrialState.FAIL
            )
            if True in choices and (measured_no_mse or len(choices) == 1):
                return True
            return random.Random((self.seed * 7919 + trial.number) % 2**32).choice(choices)
        if JOINT_KEY.fullmatch(param_name):
            return self._sample_joint(study, trial, others, param_name, param_distribution)
        if param_name != "w":
            raise ValueError(f"WeightSampler knows only with_mse, w and w1, w2, ..., not {param_name!r}")
        return self._sample_w(study, trial, others, param_distribution)

    def _slacks(self, completed) -> dict[int, float] | None:
        """Trial number -> its budget's slack (<= 0 within it), for every completed trial the
        shadow gets; None without a budget, or where one of them lacks the value."""
        constraint = getattr(self, "constraint", None)  # a sampler pickled before budgets: none
        if constraint is None:
            return None
        values = {t.number: t.user_attrs.get(CONSTRAINT_VALUE) for t in completed}
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values.values()):
            return None
        return {n: constraint.slack(float(v), self.baseline_mean) for n, v in values.items()}

    def _shadow(self, study, trial, constrained: bool = False):
        """A private study whose GPSampler sees only the trials we hand it."""
        return optuna.create_study(
            directions=study.directions,  # two with a front (--objective twice): GPSampler's log EHVI
            sampler=optuna.samplers.GPSampler(
                seed=(self.seed * 7919 + trial.number) % 2**32,
                n_startup_trials=self.n_startup_trials,
                warn_independent_sampling=False,
                **(compat.constrained_gp_kwargs() if constrained else {}),
            ),
        )

    def _fill(self, study, trial, others, dists, params_of):
        """The shadow study of `others`' with-MSE trials that have every parameter of `dists`
        (`params_of(t)` their values, or None to leave a trial out): COMPLETE ones with their
        value (and slack, with a budget), RUNNING and PRUNED ones as pending."""
        states = optuna.trial.TrialState
        mine = [(t, p) for t in others if t.params.get("with_mse") is True
                and (p := params_of(t)) is not None]
        completed = [t for t, _ in mine if t.state == states.COMPLETE and t.values is not None
                     and all(math.isfinite(v) for v in t.values)]
        slacks, done = self._slacks(completed), {t.number for t in completed}
        shadow = self._shadow(study, trial, constrained=slacks is not None)
        for t, params in mine:
            if t.number in done:
                attrs = compat.constraint_attrs([slacks[t.number]]) if slacks is not None else None
                shadow.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                                           values=t.values, system_attrs=attrs))
            elif t.state in (states.RUNNING, states.PRUNED):
                # A pruned (early-stopped) w enters as pending, never with its early value (that
                # is the objective at another fidelity): the joint EI of pending points keeps
                # the sampler from proposing that w again, which ASHA would prune again.
                shadow.add_trial(optuna.trial.create_trial(state=states.RUNNING, params=params,
                                                           distributions=dists))
        return shadow

    def _sample_joint(self, study, trial, others, name, dist):
        """A joint loss (mse + w1*a + w2*b): one GP over all its weights. The first weight a
        trial asks for is proposed together with the others (GPSampler on the shadow study,
        its trials' COMPLETE values, running and pruned ones pending, as for w); the others
        are then answered from that proposal. The weights are the parameters w1, w2, ...
        that this or the study's earlier trials declared (the enqueued reference points
        declare them all before the first proposal)."""
        key = (study.study_name, trial.number)
        if name in self._proposed.get(key, {}):
            return self._proposed[key].pop(name)
        dists = {name: dist}
        for t in others:
            dists.update({k: d for k, d in t.distributions.items()
                          if JOINT_KEY.fullmatch(k) and k not in dists})
        dists.update({k: d for k, d in trial.distributions.items() if JOINT_KEY.fullmatch(k)})
        asked = set(trial.params)  # weights this trial already has (fixed or sampled)
        dists = {k: dists[k] for k in sorted(dists) if k not in asked or k == name}
        shadow = self._fill(study, trial, others, dists, lambda t: (
            {k: t.params[k] for k in dists} if all(k in t.params for k in dists) else None))
        proposal = dict(shadow.ask(dists).params)
        value = proposal.pop(name)
        self._proposed[key] = proposal
        return value

    def _sample_w(self, study, trial, others, dist):
        shadow = self._fill(study, trial, others, {"w": dist},
                            lambda t: {"w": t.params["w"]} if "w" in t.params else None)
        return shadow.ask({"w": dist}).params["w"]
