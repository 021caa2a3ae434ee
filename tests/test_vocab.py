"""The shared vocabulary (tune_vqvae.vocab): labels, the config reading, the paper's grid."""

from __future__ import annotations

import subprocess
import sys

import yaml
from conftest import trial_config as cfg

from tune_vqvae.vocab import (
    PAPER_GRID_FILE,
    config_label,
    dir_tag,
    loss_settings,
    mode,
    on_paper_grid,
    paper_points,
    paper_weights,
    point_name,
)


def test_loss_settings_and_labels():
    assert loss_settings(cfg(role="baseline", w=3.0)) == ("mse", 1.0, True)
    assert loss_settings(cfg(w=0.5)) == ("gmsd", 0.5, True)
    assert loss_settings(cfg(with_mse=False)) == ("gmsd", 1.0, False)
    assert config_label(cfg(w=0.5)) == "mse+0.5*gmsd"
    assert config_label(cfg(with_mse=False)) == "gmsd (no mse)"
    assert config_label(cfg(role="baseline")) == "mse"


def test_short_forms_of_a_config():
    assert (mode("gmsd", True), mode("gmsd", False), mode("mse", True)) == ("mse+w*gmsd", "gmsd alone", "mse")
    assert (point_name(True, 0.5), point_name(False, None)) == ("w=0.5", "no MSE")
    assert (dir_tag("baseline", True, None), dir_tag("search", True, 0.5), dir_tag("search", False, None)) \
        == ("mse", "w0.5", "nomse")


def test_objective_value_is_minimised():
    from tune_vqvae.objectives import get

    assert get("swd").report({"swd": 3.0})["objective"] == 3.0
    assert get("val_psnr").report({"val_psnr": 30.0})["objective"] == -30.0
    assert get("val_psnr").value_of({"objective": -30.0}) == 30.0  # the sign undone
    assert get("swd").value_of({"objective": 3.0}) == 3.0


def test_paper_grid_is_read_from_its_yaml_file():
    raw = yaml.safe_load(PAPER_GRID_FILE.read_text())
    assert len(paper_points()) == len(raw["points"]) == 4
    assert paper_weights() == (1.0, 0.5, 0.25)
    assert on_paper_grid("gmsd", True, 0.5) and on_paper_grid("gmsd", False, None)
    assert not on_paper_grid("gmsd", True, 0.3)


def test_confirmation_words():
    from tune_vqvae.vocab import CANDIDATES, CONFIRM, CONFIRM_SUFFIX, ROW_ROLES, VERDICTS

    assert ROW_ROLES[-1] == CONFIRM == "confirm" and CONFIRM_SUFFIX == "-confirm"
    assert CANDIDATES == ("recommended", "best_paper", "best_observed", "within_budget")
    assert VERDICTS == ("better", "indistinguishable", "worse")


def test_the_vocabulary_imports_neither_ray_nor_torch():
    code = "import sys, tune_vqvae.vocab; print(sorted({'ray', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_stage_trains_seeds_no_other_stage_does():
    """The baseline, --seeds re-runs, search trials, the fixed confirmation and the race: the
    seed ranges of vocab never meet (a seed trained twice is the same run, not a replicate)."""
    from tune_vqvae.vocab import CONFIRM_SEED_OFFSET, MAX_TRIALS, race_seeds, rerun_seeds, search_seed

    for base in (0, 7):
        stages = {
            "baseline": {base + k for k in range(3)},
            "reruns": set(rerun_seeds(base, 3, 5)),
            "search": {search_seed(base, n) for n in range(MAX_TRIALS)},
            "confirm": {base + CONFIRM_SEED_OFFSET + k for k in range(5)},
            "race": {s for k in range(50) for s in race_seeds(base, k, 3)},
        }
        names = list(stages)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                assert not stages[a] & stages[b], (a, b)
    assert rerun_seeds(0, 1, 2) == [1, 2] and rerun_seeds(0, 3, 2) == [3, 4]
