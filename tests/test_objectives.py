"""The objective record (tune_vqvae.objectives): a made-up objective is one record and one
scorer, and every layer that selects on it (the search's settings, the trial's report, the
results rows, the answer, the report's words) follows it."""

from __future__ import annotations

import pytest

from tune_vqvae import objectives
from tune_vqvae.errors import UserError
from tune_vqvae.objectives import Objective


@pytest.fixture
def sharpness():
    """Made up: higher is better, scored from the trainer's own metrics."""
    record = Objective("sharpness", lower_is_better=False, text="a made-up sharpness", unit="au",
                       scorer=lambda m: 100.0 - m["val_mse"] * 10)  # the one scorer function
    objectives.register(record)  # the one record
    yield record
    del objectives.OBJECTIVES["sharpness"]


def test_a_made_up_objective_is_one_record_and_one_scorer(sharpness):
    from tune_vqvae.search._config import SearchConfig, resolve_objective
    from tune_vqvae.search._results import _gain
    from tune_vqvae.stats.runs import best_observed

    cfg = SearchConfig(losses=["gmsd"], objective="sharpness", mock=True)
    cfg.validate()  # --objective accepts it
    assert resolve_objective(cfg)[0] == "sharpness"
    reported = sharpness.report({"val_mse": 0.5})  # what the trainable reports: minimised
    assert reported == {"sharpness": 95.0, "objective": -95.0}
    assert sharpness.value_of({"objective": -95.0}) == 95.0  # results rows read it back
    assert sharpness.test_name == "test_sharpness" and sharpness.direction == "higher is better"
    assert _gain(90.0, 95.0, "sharpness")["absolute"] == 5.0  # better = higher
    runs = [{"with_mse": True, "w": w, "value": v} for w, v in ((0.1, 90.0), (1.0, 95.0))]
    assert best_observed(runs, "gmsd", sharpness.lower_is_better) == {"with_mse": True, "w": 1.0}


def test_unknown_objective_is_a_user_error():
    with pytest.raises(UserError, match="unknown objective 'beauty'; valid: fid, swd"):
        objectives.get("beauty")


def test_every_record_is_complete():
    for name, o in objectives.OBJECTIVES.items():
        assert o.name == name and o.text and o.test_name.startswith("test_")
        assert o.minimised(2.0) == (2.0 if o.lower_is_better else -2.0)
