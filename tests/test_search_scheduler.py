"""ProtectedASHA (search/_scheduler.py): ASHA's own decisions, except that the reference points
(the paper's grid, a joint loss's diagonal, the baseline) always train all epochs."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"
from ray.tune.schedulers import TrialScheduler  # noqa: E402

from tune_vqvae.search._scheduler import ProtectedASHA  # noqa: E402
from tune_vqvae.search._spaces import space_for  # noqa: E402

EPOCHS = 9


def _asha(loss: str) -> ProtectedASHA:
    return ProtectedASHA(space_for(loss), time_attr="epoch", max_t=EPOCHS, grace_period=1,
                         metric="objective", mode="min")


def _decide(asha: ProtectedASHA, trial_id: str, config: dict, value: float, epoch: int = 1) -> str:
    trial = SimpleNamespace(trial_id=trial_id, config=config)
    if trial_id not in asha._trial_info:
        asha.on_trial_add(None, trial)
    return asha.on_trial_result(None, trial, {"epoch": epoch, "objective": value})


@pytest.mark.parametrize("loss, point, other", [
    ("gmsd", {"w": 0.5}, {"w": 3.0}),
    ("ssim+gmsd", {"w1": 0.5, "w2": 0.5}, {"w1": 3.0, "w2": 0.07}),  # w stays None: the bug
])
def test_reference_points_are_never_stopped_other_points_are(loss, point, other):
    asha = _asha(loss)
    base = {"loss": loss, "role": "search", "with_mse": True, "w": None}
    for i in range(6):  # better and better values recorded at the first rung: none stopped
        assert _decide(asha, f"good{i}", {**base, **other}, 1.0 - 0.1 * i) == TrialScheduler.CONTINUE
    assert asha.protects({**base, **point})
    assert _decide(asha, "paper", {**base, **point}, 100.0) == TrialScheduler.CONTINUE  # protected
    assert _decide(asha, "searched", {**base, **other}, 100.0) == TrialScheduler.STOP  # ASHA's cut
    baseline = {"loss": "mse", "role": "baseline", "with_mse": True, "w": None}
    assert _decide(asha, "baseline", baseline, 100.0) == TrialScheduler.CONTINUE
