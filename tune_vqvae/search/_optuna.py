"""Optuna inside Ray Tune: the define-by-run space, the GP sampler of w, and the searcher
that keeps the Optuna study right across diverged trials and driver restarts."""

from __future__ import annotations

import math
import random
from pathlib import Path

import optuna
from ray.tune.search.optuna import OptunaSearch

from . import _compat
from ._spaces import SearchSpace


class WeightSpace:
    """Define-by-run space: the categorical with_mse and, for mse + w * L only, w."""

    def __init__(self, space: SearchSpace):
        self.low, self.high, self.log = space.low or 1e-3, space.high or 10.0, space.log
        self.choices = list(space.with_mse)

    def __call__(self, trial) -> None:
        with_mse = trial.suggest_categorical("with_mse", self.choices)
        if with_mse:
            trial.suggest_float("w", self.low, self.high, log=self.log)


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
    and it would sample w at random. Here the GP sees exactly the with-MSE trials (running
    ones included). The no-MSE variant has no free parameter: once it has been measured (it
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
            return random.Random(self.seed * 7919 + trial.number).choice(choices)
        if param_name != "w":
            raise ValueError(f"WeightSampler knows only with_mse and w, not {param_name!r}")
        return self._sample_w(study, trial, others, param_distribution)

    def _sample_w(self, study, trial, others, dist):
        states = optuna.trial.TrialState
        shadow = optuna.create_study(
            direction=study.direction,
            sampler=optuna.samplers.GPSampler(
                seed=self.seed * 7919 + trial.number,
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
            elif t.state == states.RUNNING:
                shadow.add_trial(optuna.trial.create_trial(
                    state=states.RUNNING, params={"w": t.params["w"]}, distributions={"w": dist}))
        return shadow.ask({"w": dist}).params["w"]


class WeightSearch(OptunaSearch):
    """OptunaSearch that marks diverged trials FAIL (not scored) and names the Ray trial."""

    def suggest(self, trial_id):
        params = super().suggest(trial_id)
        if params is not None:
            _compat.searcher_trials(self)[trial_id].set_user_attr("ray_trial_id", trial_id)
        return params

    def restore(self, checkpoint_path):
        """Restore from the experiment's last snapshot, then reconcile it with the journal,
        which is newer when the driver was killed (kill -9, a lost head node):

        - a trial the snapshot has as running but the journal as finished completed after
          the snapshot: Tune re-runs its last epochs from its checkpoint; the journal keeps
          its (identical, seeded) result and the repeated reports are ignored;
        - a journal trial still RUNNING that no Tune trial of the snapshot owns was asked
          after the snapshot: no trial will ever report it, so it is marked FAIL (user attr
          `orphaned`) instead of staying RUNNING, which the GP would take as a pending w.
        """
        super().restore(checkpoint_path)
        study, told = _compat.searcher_study(self), _compat.searcher_told(self)
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        owned = set()
        for trial_id, ot_trial in _compat.searcher_trials(self).items():
            owned.add(ot_trial.number)
            frozen = trials.get(ot_trial.number)
            if frozen is not None and frozen.state.is_finished():
                told.add(trial_id)
        for number, t in trials.items():
            if t.state == optuna.trial.TrialState.RUNNING and number not in owned:
                _compat.set_stored_user_attr(study, t, "orphaned", "asked just before the search "
                                             "driver died; no trial ran it")
                study.tell(number, state=optuna.trial.TrialState.FAIL)

    def on_trial_result(self, trial_id, result):
        """Ignored: a diverged or non-finite report, and reports of a trial told already
        (repeated epochs after a restore)."""
        value = result.get(self.metric)
        if result.get("diverged") or value is None or not math.isfinite(value) \
                or trial_id in _compat.searcher_told(self):
            return
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id, result=None, error=False):
        """Ignored for a trial told already (e.g. before a driver restart); a diverged
        trial is told FAIL with its epoch and error, never scored."""
        told, ot_trials = _compat.searcher_told(self), _compat.searcher_trials(self)
        if trial_id in told:
            return
        if trial_id in ot_trials and result and result.get("diverged"):
            ot_trial = ot_trials[trial_id]
            ot_trial.set_user_attr("diverged_at_epoch", int(result.get("epoch", 0)))
            ot_trial.set_user_attr("error", str(result.get("error", "diverged")))
            _compat.searcher_study(self).tell(ot_trial, state=optuna.trial.TrialState.FAIL)
            told.add(trial_id)
            return
        super().on_trial_complete(trial_id, result=result, error=error)


def journal_storage(path: Path):
    """The search's Optuna journal (one file, every loss's study; optuna-dashboard reads it)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))
