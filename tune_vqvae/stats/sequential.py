"""Sequential confirmation: a budget of runs spent in rounds of common seeds (issue 21).

Each round trains the baseline and every candidate still in the race on one fresh seed
(common random numbers: `stats.paired`), and the baseline on B - 1 more seeds of its own
(`baseline_runs`, B >= 1): a config's value in a round is the mean of its finished runs there
(`round_value`), so a candidate pairs with the mean of the baseline's B. Why B > 1: the
baseline's run-to-run noise (5.2% on the CIFAR subset) is about three times the candidates'
(1.7%), so it dominates var(candidate - baseline), and one baseline serves every candidate of
the round (Neyman allocation). Validity is untouched: rounds stay i.i.d. (the extra seeds are
fresh and no other run uses them), so the paired t over rounds of d_k = candidate_k - mean of
the baseline's round k is the same test on a less noisy d. A round costs B + (candidates
alive) runs. After each round from `FIRST_LOOK` pairs on:

- every candidate's `candidate - baseline` gets a repeated confidence interval (paired t at
  the look's nominal level) and a verdict (`stats.equivalence`: better / worse / equivalent
  within +-min_effect% / not resolved); a candidate resolved "worse" leaves the race;
- a candidate whose paired interval against another candidate lies wholly on its bad side is
  dropped (clearly worse than another: SMAC's intensification does the same);
- the race stops when every candidate left has a resolved verdict, or the budget is spent.

Validity under this peeking: group-sequential alpha spending (Lan & DeMets 1983) with an
O'Brien-Fleming-type spending function f(t) = 2 - 2 Phi(z_{1-a/2} / sqrt(t)), t = pairs / K.
We chose it over an anytime-valid confidence sequence because the budget fixes the most
rounds K in advance, so the looks are known, and O'Brien-Fleming spends almost nothing early:
the last look's interval is nearly the fixed-sample one (1.10x the fixed paired t half-width
at K = 10), where a confidence sequence is wider at every n (Lai's 1976 t-CS, its mixing
parameter tuned for n = 10: 1.70x there; computed, not simulated), i.e. about (1.70/1.10)^2 =
2.4x the runs for the same power. The boundaries are those of the z statistic (Brownian
motion at the looks, by Monte Carlo with a fixed seed); with the variance estimated, each
look uses the t quantile at the boundary's nominal level (the usual approximation, e.g.
Jennison & Turnbull 2000; tests/test_stats_sequential.py measures the type I error under
peeking: 3.4% and 2.3% at alpha 5%). The intervals so made cover
all looks at once (repeated confidence intervals), so any verdict read at any stopping time
errs with probability <= alpha. Several candidates share alpha (Bonferroni: alpha/m each),
so "some candidate is falsely better or worse" stays <= alpha.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .equivalence import NOT_RESOLVED, RESOLVED, WORSE, verdict
from .intervals import Interval
from .paired import measured_correlation, paired_interval, percent_of

FIRST_LOOK = 3  # pairs before the first verdict: a t interval from 2 pairs has 1 df
MC_PATHS = 200_000  # Monte Carlo paths for the boundaries (their alpha to about +-0.0005)
# The default race's most rounds (`default_budget`): with 8 search trials a loss, 10 rounds
# declared a true 5% gain 3x as often as the fixed 3-seed stage after 16 trials, at fewer
# runs (bench search, 200 repeats, README "Paired, sequential confirmation").
DEFAULT_ROUNDS = 10
MAX_RACE_ROUNDS = 50  # the boundaries' Monte Carlo holds MC_PATHS x rounds doubles (80 MB at 50)


def spending(t: float, alpha: float) -> float:
    """O'Brien-Fleming-type spending: the type I error spent by information fraction t."""
    return float(2.0 - 2.0 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t)))


@functools.lru_cache(maxsize=64)
def nominal_levels(max_rounds: int, alpha: float, first: int = FIRST_LOOK) -> tuple[float, ...]:
    """Two-sided nominal alpha at each look n = first..max_rounds (index n - first): the
    |z| boundaries whose first crossing at look n has probability f(n/K) - f((n-1)/K), the
    first look spending f(first/K) (the rounds before it had no look)."""
    if max_rounds < first:
        raise ValueError(f"nominal_levels: need at least {first} rounds, got {max_rounds}")
    rng = np.random.default_rng(0)
    sums = np.cumsum(rng.standard_normal((MC_PATHS, max_rounds), dtype=np.float64), axis=1)
    alive = np.ones(MC_PATHS, dtype=bool)
    levels = []
    for n in range(first, max_rounds + 1):
        z = np.abs(sums[:, n - 1]) / np.sqrt(n)
        target = spending(n / max_rounds, alpha) - (1.0 - alive.mean())  # still to spend here
        k = int(round(target * MC_PATHS))
        if k <= 0:
            levels.append(0.0)
            continue
        boundary = np.sort(z[alive])[::-1][min(k, int(alive.sum())) - 1]
        alive &= z < boundary
        levels.append(float(2.0 * stats.norm.sf(boundary)))
    return tuple(levels)


def look_interval(candidate, baseline, nominal_alpha: float) -> Interval:
    """The repeated confidence interval of one look: paired t at level 1 - nominal_alpha
    (an infinite interval where the look spends nothing)."""
    if nominal_alpha <= 0:
        mean = float(np.mean(np.asarray(candidate) - np.asarray(baseline)))
        return Interval(mean, -np.inf, np.inf, 1.0, "paired-t", 2 * len(candidate))
    return paired_interval(candidate, baseline, level=1.0 - nominal_alpha)


BASE = "baseline"  # the baseline's key in Race.values and in run_round's answer


def round_cost(candidates: int, baseline_runs: int = 1) -> int:
    """Runs of one round with every candidate in the race: the baseline's and one each."""
    return baseline_runs + candidates


def default_budget(candidates: int, baseline_runs: int = 1) -> int:
    """The search's budget when none is given: DEFAULT_ROUNDS rounds with every candidate in
    the race (20 runs for one loss: the split the search benchmark chose, README)."""
    return DEFAULT_ROUNDS * round_cost(candidates, baseline_runs)


def max_rounds(budget: int, candidates: int, baseline_runs: int = 1) -> int:
    """Rounds the budget pays for with every candidate in the race (the spending's K)."""
    return budget // round_cost(candidates, baseline_runs)


def least_budget(candidates: int, baseline_runs: int = 1) -> int:
    """The smallest budget that pays for the first look with every candidate in the race."""
    return FIRST_LOOK * round_cost(candidates, baseline_runs)


def round_value(runs) -> tuple[float, int] | None:
    """(mean, count) of one config's finished runs in one round (a number or a sequence; the
    non-finite ones failed), None where none finished: a hole. The one rule of a round's
    value, for the race live and for its replay from rows."""
    done = [float(v) for v in np.atleast_1d(np.asarray(runs, dtype=float)) if np.isfinite(v)]
    return (float(np.mean(done)), len(done)) if done else None


@dataclass(frozen=True)
class RaceSpec:
    """What a race is run under, fixed when it starts: the candidates (in this order: drops
    depend on it), the budget of runs (the baseline's included), the equivalence margin in %
    of the baseline, the family-wise alpha (alpha / m per candidate), the metric's direction,
    a group per candidate (a candidate is dropped only for a rival of its group: the
    losses of one search each keep their own verdict), and the baseline's runs per round."""

    candidates: tuple[str, ...]
    budget: int
    min_effect: float
    alpha: float = 0.05
    lower_is_better: bool = True
    groups: tuple[str, ...] | None = None
    baseline_runs: int = 1

    @property
    def max_rounds(self) -> int:
        return max_rounds(self.budget, len(self.candidates), self.baseline_runs)

    def levels(self) -> tuple[float, ...]:
        """Each look's two-sided nominal alpha, index rounds - FIRST_LOOK."""
        m, b = len(self.candidates), self.baseline_runs
        if b < 1:
            raise ValueError(f"race: the baseline needs at least 1 run per round, got {b}")
        if m < 1 or self.max_rounds < FIRST_LOOK:
            raise ValueError(f"race: {self.budget} runs pay for {self.max_rounds} rounds of {m} candidates + "
                             f"{b} baseline; give a budget of at least {least_budget(m, b)}")
        return nominal_levels(self.max_rounds, self.alpha / m)

    def group(self, name: str) -> str:
        return self.groups[self.candidates.index(name)] if self.groups else ""


@dataclass
class Race:
    """The state and outcome of a sequential confirmation: values per config {round: value}
    (the baseline under BASE, its round's mean; a round where all of a config's runs failed
    is a hole, and pairs form on common rounds), the finished runs per config,
    each candidate's last interval (% of the baseline mean) and verdict, who dropped whom,
    the rounds of each candidate's last look and that look's level, and why it stopped
    ("resolved": every verdict left is resolved, "budget": the budget is spent, None: running)."""

    values: dict[str, dict[int, float]]
    alive: list[str]
    verdicts: dict[str, str]
    percent: dict[str, Interval] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    rounds: int = 0
    last_look: dict[str, int] = field(default_factory=dict)  # candidate -> rounds at its last look
    levels: dict[str, float] = field(default_factory=dict)  # candidate -> that look's level
    stopped: str | None = None
    finished: dict[str, int] = field(default_factory=dict)  # config -> its finished runs

    @property
    def runs(self) -> int:
        return sum(n for k, n in self.finished.items() if k != BASE)

    @property
    def baseline_runs(self) -> int:
        return self.finished.get(BASE, 0)

    def pairs(self, name: str, other: str = BASE,
              rounds: int | None = None) -> tuple[list[float], list[float]]:
        """Same-round values of `name` and `other` (the baseline), rounds < `rounds` (all)."""
        common = sorted(set(self.values[name]) & set(self.values[other]))
        common = [k for k in common if rounds is None or k < rounds]
        return [self.values[name][k] for k in common], [self.values[other][k] for k in common]

    def correlation(self, name: str) -> Interval | None:
        """The measured same-seed correlation of `name` with the baseline (Fisher interval),
        from 4 pairs on: what the pairing bought in this race."""
        own, base = self.pairs(name)
        return measured_correlation(own, base)

    def best(self, lower_is_better: bool = True) -> str:
        pool = self.alive or list(self.verdicts)
        sign = 1.0 if lower_is_better else -1.0
        return min(pool, key=lambda c: sign * self.percent[c].estimate if c in self.percent else np.inf)


def start(spec: RaceSpec) -> Race:
    spec.levels()  # a budget too small for the first look fails here, before any run
    names = list(spec.candidates)
    return Race({BASE: {}, **{c: {} for c in names}}, names, dict.fromkeys(names, NOT_RESOLVED))


def advance(state: Race, spec: RaceSpec, values: dict[str, float]) -> Race:
    """Add the next round (`values`: {BASE: its runs' values, name: value} of the baseline
    and the candidates alive; a value or a sequence of them per config, see `round_value`;
    a missing one is a hole), look from FIRST_LOOK rounds on, and say whether the race stopped."""
    k = state.rounds
    for name in [BASE, *state.alive]:
        done = round_value(values[name]) if name in values else None
        if done is not None:
            state.values[name][k] = done[0]
            state.finished[name] = state.finished.get(name, 0) + done[1]
    state.rounds = k + 1
    if state.rounds >= FIRST_LOOK:
        _look(state, spec, spec.levels()[state.rounds - FIRST_LOOK])
    if not state.alive or all(state.verdicts[c] in RESOLVED for c in state.alive):
        state.stopped = "resolved"
    elif state.rounds >= spec.max_rounds:
        state.stopped = "budget"
    return state


def replay(spec: RaceSpec, rounds: dict[int, dict[str, list[float]]]) -> Race:
    """The race as its rounds' values decide it: the live search after each round, `--resume`
    and the report all call this on the same rows, so their decisions agree. Rounds past the
    stop, and values of candidates not alive in their round, are left out."""
    state = start(spec)
    for k in range(max(rounds, default=-1) + 1):
        if state.stopped:
            break
        advance(state, spec, rounds.get(k, {}))
    return state


def race(run_round: Callable[[int, list[str]], dict], candidates: list[str], budget: int,
         min_effect: float, alpha: float = 0.05, lower_is_better: bool = True,
         baseline_runs: int = 1) -> Race:
    """Run the sequential confirmation. `run_round(k, names)` trains round k's common seed for
    the baseline and `names`, and `baseline_runs` - 1 more seeds for the baseline, and returns
    {BASE: [its values], name: value, ...}; `budget` counts runs, the baseline's included;
    `min_effect` is the equivalence margin in % of the baseline."""
    spec = RaceSpec(tuple(candidates), budget, min_effect, alpha, lower_is_better,
                    baseline_runs=baseline_runs)
    state = start(spec)
    while not state.stopped:
        advance(state, spec, run_round(state.rounds, list(state.alive)))
    return state


def judge(state: Race, name: str, nominal_alpha: float, spec: RaceSpec,
          rounds: int | None = None) -> tuple[Interval, Interval, str] | None:
    """(candidate - baseline, the same in % of the baseline mean, verdict) at one look's
    nominal alpha, over the common rounds < `rounds`; None below 2 pairs."""
    own, base = state.pairs(name, BASE, rounds)
    if len(own) < 2:
        return None
    d = look_interval(own, base, nominal_alpha)
    pct = percent_of(d, float(np.mean(base)))
    return d, pct, verdict(pct, spec.min_effect, spec.lower_is_better)


def _look(state: Race, spec: RaceSpec, nominal_alpha: float) -> None:
    """One look: verdicts against the baseline, then drops for a rival of the same group."""
    for c in state.alive:
        judged = judge(state, c, nominal_alpha, spec)
        if judged is not None:
            state.percent[c], state.verdicts[c] = judged[1], judged[2]
            state.last_look[c], state.levels[c] = state.rounds, 1.0 - nominal_alpha
    for c in [c for c in state.alive if state.verdicts[c] == WORSE]:
        state.alive.remove(c)
        state.dropped[c] = BASE
    for a, b in itertools.permutations(list(state.alive), 2):
        if a in state.alive and b in state.alive and spec.group(a) == spec.group(b):
            own, rival = state.pairs(a, b)
            if len(own) < 2:
                continue
            iv = look_interval(own, rival, nominal_alpha)  # a - b
            if iv.low > 0 if spec.lower_is_better else iv.high < 0:
                state.alive.remove(a)
                state.dropped[a] = b
