"""The confirmation's settings as the CLI resolves them, without Ray running: the race is
the default, with `sequential.default_budget` runs for the losses searched; --confirm-seeds
chooses the fixed stage; a search saved before the race keeps its fixed stage."""

from __future__ import annotations

import dataclasses

import pytest

from tune_vqvae.errors import UserError
from tune_vqvae.search import SearchConfig
from tune_vqvae.search._args import build_parser
from tune_vqvae.search._cli import config_from_args
from tune_vqvae.search._config import resolve_spaces
from tune_vqvae.stats.sequential import DEFAULT_ROUNDS
from tune_vqvae.vocab import SPACES_DIR


def settled(*argv: str) -> SearchConfig:
    cfg = config_from_args(build_parser().parse_args(list(argv)))
    cfg.validate()
    return cfg


@pytest.mark.parametrize(("argv", "budget"), [
    (["--loss", "gmsd"], 20),                                  # 10 rounds of baseline + 1 candidate
    (["--loss", "all"], 70),                                   # 10 rounds of baseline + 6
    (["--loss", "gmsd", "--race-baseline-runs", "2"], 30),     # 10 rounds of 2 baseline runs + 1
    (["--loss", "gmsd", "--confirm-budget", "24"], 24),
])
def test_the_race_is_the_default_confirmation_with_ten_rounds(argv, budget):
    cfg = settled(*argv)
    assert DEFAULT_ROUNDS == 10 and cfg.confirm_budget == budget


def test_confirm_seeds_alone_chooses_the_fixed_stage():
    cfg = settled("--loss", "gmsd", "--confirm-seeds", "5")
    assert (cfg.confirm_budget, cfg.confirm_seeds) == (0, 5)
    assert settled("--loss", "gmsd", "--confirm-budget", "0").confirm_budget == 0


def test_a_fixed_stage_with_race_baseline_runs_is_refused_naming_the_cause():
    with pytest.raises(UserError, match="this search has the fixed stage .* add --confirm-budget N"):
        settled("--loss", "gmsd", "--confirm-seeds", "3", "--race-baseline-runs", "2")


def test_a_space_file_without_loss_gets_its_losses_budget():
    cfg = settled("--space", str(SPACES_DIR / "paper_grid.yaml"))
    assert cfg.confirm_budget is None  # the losses come from the file
    resolve_spaces(cfg)
    assert cfg.confirm_budget == DEFAULT_ROUNDS * (1 + len(cfg.losses))


def test_saved_settings_without_a_budget_keep_the_fixed_stage_and_a_saved_budget_is_kept():
    before_race = {"losses": ["gmsd"], "confirm_seeds": 3}  # a search.json of 2026-11-30
    assert SearchConfig.from_dict(before_race).confirm_budget == 0
    saved = dataclasses.asdict(settled("--loss", "gmsd", "--confirm-budget", "16"))
    assert SearchConfig.from_dict(saved).confirm_budget == 16
