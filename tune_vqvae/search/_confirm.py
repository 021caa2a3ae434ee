"""The confirmation stage of a search, and its answer.

After the search stage each loss's candidates (the surrogate's recommended w, the best paper
point, the best observed w; with --constraint the best w within the budget) are re-run on
fresh seeds together with the MSE baseline, so each verdict pairs same-seed runs
(`stats.paired`). Two designs:

- fixed (`--confirm-seeds N`): N seeds for every candidate, in <loss>-confirm/ and
  baseline-confirm/;
- sequential (`--confirm-budget N`): each loss's recommended w (with --constraint its best w
  within the budget; `stats.race.raced_candidate`) and the baseline in rounds of one common
  seed (with --race-baseline-runs B the baseline on B - 1 more seeds of its own a round),
  until every verdict is resolved or the budget is spent (`stats.sequential`). One
  experiment per look: r03-confirm/ runs rounds 0..2, r04-confirm/ round 3, ... Which
  candidates run next is always replayed from the rows (`stats.race.race_of`), so --resume
  continues exactly where the race stood.
"""

from __future__ import annotations

from .. import objectives
from ..stats import merge_candidates
from ..stats import search_answer as answer_of
from ..stats.race import Raced, RaceSettings, race_json, race_key, race_of, race_text, raced_candidate
from ..stats.runs import point_dict, point_of
from ..stats.sequential import FIRST_LOOK
from ..vocab import CONFIRM, race_experiment
from ._config import SearchConfig
from ._experiments import Experiments
from ._results import collect_rows
from ._runner import run_experiments, say
from ._spaces import SearchSpace


def race_settings(cfg: SearchConfig) -> RaceSettings | None:
    if not cfg.confirm_budget:
        return None
    return RaceSettings(cfg.confirm_budget, cfg.min_effect, baseline_runs=cfg.race_baseline_runs)


def search_answer(cfg: SearchConfig, spaces: dict[str, SearchSpace], rows: list[dict],
                  objective: str) -> dict:
    """results.json's "answer" (see tune_vqvae.stats), from the rows so far."""
    bounds = {loss: s.bounds() for loss, s in spaces.items()}
    n = cfg.confirm_seeds if cfg.confirm_seeds >= 2 else cfg.baseline_seeds
    return answer_of(rows, cfg.losses, epochs=cfg.epochs, bounds=bounds,
                     lower_is_better=objectives.get(objective).lower_is_better, n_per_config=n,
                     min_effect=cfg.min_effect, race=race_settings(cfg), constraint=cfg.budget,
                     front=(objective, cfg.trade_off) if cfg.trade_off else None)


def confirm(cfg: SearchConfig, experiments: Experiments, spaces: dict[str, SearchSpace], rows: list[dict],
            objective: str) -> list[dict]:
    """The confirmation stage's rows: the sequential race with --confirm-budget, else each
    loss's candidates re-run with --confirm-seeds fresh seeds (none with 0)."""
    if cfg.confirm_budget:
        return confirm_race(cfg, experiments, spaces, rows, objective)
    if not cfg.confirm_seeds:
        return []
    out = []
    jobs = experiments.confirmations(candidates(cfg, spaces, rows, objective))
    for exp, grid in run_experiments(jobs).items():
        out.extend(collect_rows(exp, grid, cfg, None, objective, confirm=True))
    return out


def candidates(cfg: SearchConfig, spaces: dict[str, SearchSpace], rows: list[dict],
               objective: str) -> dict[str, dict[str, dict]]:
    """Each loss's candidates {merged name: point}, from the search stage's answer."""
    first = search_answer(cfg, spaces, rows, objective)
    return {loss: merge_candidates(a["candidates"]) for loss, a in first["losses"].items()}


def confirm_race(cfg: SearchConfig, experiments: Experiments, spaces: dict[str, SearchSpace],
                 rows: list[dict], objective: str) -> list[dict]:
    """The sequential confirmation: one experiment per look until the race stops. A started
    race (--resume) takes its candidates from its first experiment's rows, never from a new
    fit of the surrogate, which could move the recommended w."""
    settings = race_settings(cfg)
    lower = objectives.get(objective).lower_is_better
    out: list[dict] = []
    look, raced = FIRST_LOOK, None
    while raced is None or not raced.state.stopped:
        exp = race_experiment(look)
        if raced is None:  # built only if the search has no r03-confirm yet
            first = search_answer(cfg, spaces, rows, objective)["losses"]
            points = {race_key(loss, name): p for loss, a in first.items()
                      for name, p in raced_candidate(a["candidates"]).items()}
            if not points:
                say("sequential confirmation: no candidate (no full-length run)")
                return out
            job = experiments.race_round(exp, list(range(FIRST_LOOK)), points)
        else:
            job = experiments.race_round(exp, [raced.state.rounds], alive_points(raced))
        for e, grid in run_experiments({exp: job}).items():
            out.extend(collect_rows(e, grid, cfg, None, objective, confirm=True))
        raced = race_of(rows + out, settings, epochs=cfg.epochs, lower_is_better=lower)
        if raced is None:
            say("sequential confirmation: no run of the first rounds finished; no verdict")
            return out
        say(f"sequential confirmation: {race_text(race_json(raced))}")
        look += 1
    return out


def alive_points(raced: Raced) -> dict[str, dict]:
    """{race name: point} of the candidates still in the race, as their rows ran them."""
    points = {}
    for r in raced.rows:
        key = race_key(r["loss"], str(r["candidate"])) if r.get("role") == CONFIRM else None
        if key in raced.state.alive and key not in points:
            points[key] = point_dict(r["loss"], point_of(r))
    return points
