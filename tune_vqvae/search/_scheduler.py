"""Early stopping: ASHA that never stops the reference points."""

from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from ..vocab import BASELINE
from . import _compat
from ._spaces import SearchSpace


class ProtectedASHA(ASHAScheduler):
    """ASHA that records every trial at its rungs but never stops the reference points
    (the paper's grid and the baseline): they always train all epochs, so the gains of
    the best w over them compare runs of equal length."""

    def __init__(self, space: SearchSpace, time_attr: str, max_t: int, **kwargs):
        super().__init__(time_attr=time_attr, max_t=max_t, **kwargs)
        self.space, self.time_attr, self.max_t = space, time_attr, max_t

    def protects(self, config: dict) -> bool:
        # through the one config -> weights function: a joint loss's point is its (w1, w2)
        return config.get("role") == BASELINE or self.space.is_config_point(config)

    def on_trial_result(self, tune_controller, trial, result):
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP and self.protects(trial.config) \
                and result.get(self.time_attr, 0) < self.max_t:
            _compat.asha_uncount_stop(self)
            return TrialScheduler.CONTINUE
        return action
