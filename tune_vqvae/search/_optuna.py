"""Optuna inside Ray Tune: the define-by-run space and the searcher that keeps the Optuna
study right: early-stopped trials PRUNED, diverged and crashed ones FAIL, replicate seeds of
each proposed w, driver restarts. The GP sampler of w is `tune_vqvae.sampler` (ray-free, so
the search benchmark drives the same one)."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
from ray.tune.search.optuna import OptunaSearch

from ..sampler import CONSTRAINT_VALUE, WeightSampler
from ..vocab import search_seed
from . import _compat
from ._spaces import SearchSpace

__all__ = ["WeightSpace", "WeightSampler", "WeightSearch", "journal_storage"]


class WeightSpace:
    """Define-by-run space: the categorical with_mse and, for mse + w * L only, w; for a
    joint loss (always with MSE) its weights w1, w2, ... over the same range."""

    def __init__(self, space: SearchSpace):
        self.low, self.high = space.bounds()
        self.log = space.log
        self.choices = list(space.with_mse)
        self.keys = space.keys

    def __call__(self, trial) -> None:
        with_mse = trial.suggest_categorical("with_mse", self.choices)
        if with_mse:
            for key in self.keys:
                trial.suggest_float(key, self.low, self.high, log=self.log)


class WeightSearch(OptunaSearch):
    """OptunaSearch that tells Optuna what each trial really was, and replicates each w.

    Told states (Ray's OptunaSearch tells every trial that reported a value COMPLETE,
    optuna/optuna#3100; the GP would then fit early-stopped values as final ones):

    - trained all `epochs`: COMPLETE with its final value;
    - stopped early (ASHA): PRUNED, with its intermediate values, the stopping epoch's
      included (Optuna stores the last one as the trial's value, but samplers and our
      surrogate use COMPLETE trials only);
    - diverged, ended in an error, or ended itself as failed (a damaged checkpoint): FAIL
      (never scored).

    Seeds: every trial trains a seed of its own, `vocab.search_seed(run_seed, its number)`
    (user attr `seed`), so a w proposed twice is two independent runs.

    Replicates: each w the sampler proposes (and each of the points evaluated first) runs
    `replicates` times: replicate 0 is the proposal itself, replicates 1.. are enqueued
    Optuna trials with the same parameters (user attr `replicate`), each its own Tune trial.
    So the GP (which models observation noise) sees every run as one noisy observation at its
    w, ASHA judges each run on its own, and a stopped replicate is PRUNED like any other
    trial. (Ray's `Repeater`, which averages repeats before telling the searcher, cannot be
    combined with a scheduler that stops trials.)

    Two objectives (a front: `metric` and `mode` lists, as Ray's OptunaSearch takes them):
    Optuna keeps no intermediate values of a two-objective trial, so a stopped one is PRUNED
    without them, and a full-length one missing either value FAIL.

    A distortion budget (`constraint_metric`, e.g. "val_psnr"): each trial's last reported
    value of that metric is kept as its user attr `CONSTRAINT_VALUE` before Optuna is told,
    raw (the sampler turns it into the budget's slack; the journal keeps what was measured).
    """

    def __init__(self, *args, epochs: int, replicates: int = 1, run_seed: int = 0,
                 constraint_metric: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.epochs, self.replicates, self.run_seed = epochs, replicates, run_seed
        self.constraint_metric = constraint_metric

    def suggest(self, trial_id):
        params = super().suggest(trial_id)
        if params is None:
            return None
        ot_trial = _compat.searcher_trials(self)[trial_id]
        ot_trial.set_user_attr("ray_trial_id", trial_id)
        if ot_trial.user_attrs.get("replicate") is None:  # a proposal (or a point): its replicates next
            ot_trial.set_user_attr("replicate", 0)
            for k in range(1, getattr(self, "replicates", 1)):
                _compat.searcher_study(self).enqueue_trial(dict(params), user_attrs={"replicate": k})
        seed = search_seed(getattr(self, "run_seed", 0), ot_trial.number)
        ot_trial.set_user_attr("seed", seed)
        return {**params, "train": {"seed": seed}}  # merged (deeply) into the trial's config by Tune

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
        """Ignored: a diverged, failed or non-finite report, and reports of a trial told already
        (repeated epochs after a restore)."""
        if result.get("diverged") or result.get("failed") or not self._finite(result) \
                or trial_id in _compat.searcher_told(self):
            return
        super().on_trial_result(trial_id, result)  # two objectives: nothing (no intermediate values)

    def _finite(self, result: dict) -> bool:
        """Whether `result` has a finite value of every metric the study optimises (two with a
        front: `metric` is then a list, as Ray's OptunaSearch takes it)."""
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        values = [result.get(m) for m in metrics]
        return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)

    def on_trial_complete(self, trial_id, result=None, error=False):
        """Ignored for a trial told already (e.g. before a driver restart); else told as the
        class docstring says."""
        told, ot_trials = _compat.searcher_told(self), _compat.searcher_trials(self)
        if trial_id in told or trial_id not in ot_trials:
            return
        ot_trial, result = ot_trials[trial_id], result or {}
        epoch = int(result.get("epoch", 0) or 0)
        metric = getattr(self, "constraint_metric", None)  # (a searcher pickled before budgets)
        measured = result.get(metric) if metric else None
        if isinstance(measured, (int, float)) and math.isfinite(measured):
            ot_trial.set_user_attr(CONSTRAINT_VALUE, float(measured))
        states = optuna.trial.TrialState
        if result.get("diverged"):
            ot_trial.set_user_attr("diverged_at_epoch", epoch)
            ot_trial.set_user_attr("error", str(result.get("error", "diverged")))
            state = states.FAIL
        elif result.get("failed"):  # ended itself, e.g. on a damaged checkpoint: no retry helps
            ot_trial.set_user_attr("error", str(result.get("error", "failed")))
            state = states.FAIL
        elif epoch < getattr(self, "epochs", 0):
            # an error before the last epoch (retries exhausted) is a failure, not a value
            ot_trial.set_user_attr("error_at_epoch" if error else "stopped_at_epoch", epoch)
            state = states.FAIL if error else states.PRUNED
            if not error and self._finite(result):
                # Tune withholds the result that made the scheduler stop the trial from the
                # searcher: record it as the last intermediate value
                super().on_trial_result(trial_id, result)
        elif not error and isinstance(self.metric, list) and not self._finite(result):
            # Optuna cannot store a missing objective of two; Ray would leave the trial RUNNING
            ot_trial.set_user_attr("error", f"no finite value of each of {', '.join(self.metric)}")
            state = states.FAIL
        else:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        _compat.searcher_study(self).tell(ot_trial, state=state)
        told.add(trial_id)


def journal_storage(path: Path):
    """The search's Optuna journal (one file, every loss's study; optuna-dashboard reads it)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))
