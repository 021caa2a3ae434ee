"""The answer of a sequential confirmation (`--confirm-budget`), read from results rows.

The race's state is its rows: each confirmation run of a race carries its `round` (round k
trained seed `--seed + RACE_SEED_OFFSET + k` for the baseline and every candidate still in
the race, and with `--race-baseline-runs B` B - 1 more seeds for the baseline, `vocab.race_seeds`;
no other column: a round's baseline value is the mean of the baseline rows of that round,
`sequential.round_value`), and `race_of` replays them (`sequential.replay`) under the settings search.json
keeps. The live search calls it after each round to learn who runs next, `--resume` to
continue, the report to restate the answer: one replay, so they agree by construction.

The verdicts come from the race's looks, not from a fresh 95% interval at the end (that would
ignore the peeking): a candidate's comparison with the baseline is its interval at its last
look (the last one, or the look that dropped it) at that look's nominal level, e.g. 99.5%, so
"a gain over 3% is ruled out at 99.5%" says what was spent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..vocab import BASELINE, BEST_OBSERVED, BEST_PAPER, CONFIRM, RECOMMENDED, WITHIN_BUDGET
from .answer import comparison_json
from .paired import measured_correlation
from .runs import candidate_names, finite, is_full_length, merge_candidates
from .sequential import BASE, FIRST_LOOK, Race, RaceSpec, judge, look_interval, replay, round_value

SEQUENTIAL = "paired-t (repeated)"  # the method of a race's intervals: repeated confidence intervals


def raced_candidate(named: dict[str, dict]) -> dict[str, dict]:
    """The one candidate of a loss that races the baseline: the surrogate's recommended w (the
    best observed w where no surrogate was fitted). Measured, not assumed (bench search, 40
    repeats per curve, 8 search trials + 24 runs): the recommended w alone was declared better
    in 55% of searches where a 5% gain exists, against 15% when the best paper point and the
    best observed w raced too (alpha / 3 each, a third of the rounds), at about the same runs.
    With a distortion budget (--constraint) the best w within it (`vocab.WITHIN_BUDGET`) races
    instead, named with every candidate it coincides with ("recommended+within_budget"), so
    the race states each of their verdicts."""
    if WITHIN_BUDGET in named:
        merged = next(n for n in merge_candidates(named) if WITHIN_BUDGET in n.split("+"))
        return {merged: named[WITHIN_BUDGET]}
    who = RECOMMENDED if RECOMMENDED in named else BEST_OBSERVED
    return {who: named[who]} if who in named else {}


@dataclass(frozen=True)
class RaceSettings:
    """What search.json keeps of a race: the budget of runs (--confirm-budget, the baseline's
    included), the equivalence margin, the family-wise alpha and the baseline's runs per
    round (--race-baseline-runs)."""

    budget: int
    min_effect: float
    alpha: float = 0.05
    baseline_runs: int = 1


@dataclass
class Raced:
    """A race replayed from rows: its spec, its state, and every raced row (any status)."""

    spec: RaceSpec
    state: Race
    rows: list[dict]


def race_key(loss: str, candidate: str) -> str:
    """A race's name of one loss's (merged) candidate: "gmsd:recommended"."""
    return f"{loss}:{candidate}"


def is_raced(row: dict) -> bool:
    """A run of a race (it has a round), not of the fixed --confirm-seeds stage."""
    return finite(row.get("round")) and row.get("role") in (BASELINE, CONFIRM)


def _name(row: dict) -> str:
    return BASE if row.get("role") == BASELINE else race_key(row["loss"], str(row["candidate"]))


def runs_by_round(rows: list[dict], epochs: int, key: str = "value") -> dict[str, dict[int, list[float]]]:
    """{race name: {round: [`key` of each run]}} of the full-length raced runs with a finite
    `key`: a candidate's one run of a round, the baseline's B."""
    out: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        if is_raced(r) and is_full_length(r, epochs) and finite(r.get(key)):
            out.setdefault(_name(r), {}).setdefault(int(r["round"]), []).append(float(r[key]))
    return out


def values_by_round(rows: list[dict], epochs: int, key: str = "value") -> dict[str, dict[int, float]]:
    """{race name: {round: value}}: each round's value as the race takes it (`round_value`)."""
    return {name: {k: round_value(v)[0] for k, v in by_round.items()}
            for name, by_round in runs_by_round(rows, epochs, key).items()}


def race_of(rows: list[dict], settings: RaceSettings, *, epochs: int, lower_is_better: bool) -> Raced | None:
    """The race the rows ran, replayed on the objective (None: no raced run). Its candidates
    are those of its rows, sorted (the drop order depends on the order), grouped by loss."""
    raced = [r for r in rows if is_raced(r)]
    names = sorted({_name(r) for r in raced if r.get("role") == CONFIRM and r.get("candidate")})
    if not names:
        return None
    spec = RaceSpec(tuple(names), settings.budget, settings.min_effect, settings.alpha, lower_is_better,
                    tuple(n.partition(":")[0] for n in names), settings.baseline_runs)
    # every round that ran counts, even if all its runs failed: the budget was spent on it
    rounds: dict[int, dict[str, list[float]]] = {int(r["round"]): {} for r in raced}
    for name, by_round in runs_by_round(raced, epochs).items():
        for k, v in by_round.items():
            rounds.setdefault(k, {})[name] = v
    return Raced(spec, replay(spec, rounds), raced)


def nominal_alpha(spec: RaceSpec, rounds: int) -> float:
    return spec.levels()[rounds - FIRST_LOOK]


def _at_look(raced: Raced, values: dict[str, dict[int, float]], name: str, rounds: int) -> dict:
    """`name` - baseline at the look after `rounds` rounds, as results.json states it."""
    state = dataclasses.replace(raced.state, values={BASE: {}, name: {}, **values})
    judged = judge(state, name, nominal_alpha(raced.spec, rounds), raced.spec, rounds)
    own, base = state.pairs(name, BASE, rounds)
    if judged is None:
        return comparison_json(None, own, base, raced.spec.lower_is_better)
    d = dataclasses.replace(judged[0], method=SEQUENTIAL)
    corr = measured_correlation(own, base)
    return comparison_json(d, own, base, raced.spec.lower_is_better, raced.spec.min_effect, len(own), corr)


def _vs_paper(raced: Raced, values: dict[str, dict[int, float]], rec: str, paper: str) -> dict:
    """The recommended w against the best paper point at their last common look (no margin)."""
    rounds = min(raced.state.last_look.get(rec, 0), raced.state.last_look.get(paper, 0))
    state = dataclasses.replace(raced.state, values={rec: {}, paper: {}, **values})
    own, other = state.pairs(rec, paper, rounds)
    if rounds < FIRST_LOOK or len(own) < 2:
        return comparison_json(None, own, other, raced.spec.lower_is_better)
    d = dataclasses.replace(look_interval(own, other, nominal_alpha(raced.spec, rounds)), method=SEQUENTIAL)
    return comparison_json(d, own, other, raced.spec.lower_is_better, pairs=len(own))


def race_comparisons(raced: Raced, loss: str, epochs: int, key: str = "value") -> dict[str, dict]:
    """One loss's '<candidate>_vs_baseline' (and 'recommended_vs_best_paper') from the race,
    each at the candidate's last look; `key` "test_value": the same runs' test scores at the
    same looks and levels (the race decided on the objective)."""
    values = values_by_round(raced.rows, epochs, key)
    mine = [n for n in raced.spec.candidates if n.partition(":")[0] == loss]
    out, by_name = {}, {}
    for name in mine:
        rounds = raced.state.last_look.get(name)
        c = (_at_look(raced, values, name, rounds) if rounds else
             comparison_json(None, [], [], raced.spec.lower_is_better))
        c.update(round=rounds, dropped_by=_dropped_by(raced.state.dropped.get(name)))
        for cand in candidate_names({"candidate": name.partition(":")[2]}):
            out[f"{cand}_vs_baseline"], by_name[cand] = c, name
    if RECOMMENDED in by_name and BEST_PAPER in by_name:
        rec, paper = by_name[RECOMMENDED], by_name[BEST_PAPER]
        out[f"{RECOMMENDED}_vs_{BEST_PAPER}"] = (
            {"verdict": None, "note": "the recommended w is the best paper point"} if rec == paper
            else _vs_paper(raced, values, rec, paper))
    return out


def _dropped_by(who: str | None) -> str | None:
    """Who ended a candidate's race: "baseline" (resolved worse), a rival's name, or None."""
    return None if who is None else "baseline" if who == BASE else who.partition(":")[2]


def race_json(raced: Raced) -> dict:
    """results.json's answer["race"]: what was spent and why it stopped."""
    s, spec = raced.state, raced.spec
    return {
        "budget": spec.budget, "alpha": spec.alpha, "candidates": list(spec.candidates),
        "baseline_runs_per_round": spec.baseline_runs,
        "max_rounds": spec.max_rounds, "rounds": s.rounds, "runs": s.runs + s.baseline_runs,
        "baseline_runs": s.baseline_runs, "stopped": s.stopped, "alive": list(s.alive),
        "dropped": {n: _dropped_by(b) for n, b in s.dropped.items()},
    }


def race_text(race: dict) -> str:
    """What the race spent and why it stopped, for the console and the report: "3 of at most
    5 rounds, 9 of 16 runs (3 baseline), every verdict resolved; ... dropped (worse than ...)";
    with B baseline runs a round "(6 baseline, 2 a round)"."""
    why = {"resolved": "every verdict resolved", "budget": "budget spent", None: "still running"}
    per_round = race.get("baseline_runs_per_round", 1)
    base = f"{race['baseline_runs']} baseline" + (f", {per_round} a round" if per_round > 1 else "")
    dropped = "; ".join(f"{n} dropped (worse than {b.replace('_', ' ')})" for n, b in race["dropped"].items())
    return (f"{race['rounds']} of at most {race['max_rounds']} rounds, "
            f"{race['runs']} of {race['budget']} runs ({base}), "
            f"{why.get(race['stopped'], race['stopped'])}" + (f"; {dropped}" if dropped else ""))
