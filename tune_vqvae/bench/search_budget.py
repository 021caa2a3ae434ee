"""The search benchmark under a distortion budget (issue 24): strategy `constrained`.

`python -m tune_vqvae.bench search --strategies new,constrained --constraint "val_psnr >= -0.2"
--distortion measured` runs, beside the objective curve, a distortion curve
(`tune_vqvae.distortion_curves`: the held-out PSNR a run reports) and the search as shipped
with `--constraint`, driving its own code:

- the MSE baseline runs first, to completion, and its mean of the constrained metric
  (`stats.constrained.budget_baseline`) fixes the budget, as `search/_experiments.search_stage`;
- the loss's study proposes with the constrained sampler (`WeightSampler` with the budget), each
  trial told with its metric as the user attr `CONSTRAINT_VALUE`, as `WeightSearch` does;
- the answer is the search's (`stats.search_answer` with the constraint): the best w whose
  probability of meeting the budget is >= `stats.constrained.LEVEL` (0.99) is the candidate
  `within_budget`;
- the confirmation re-runs every merged candidate and the baseline on `confirm_seeds` fresh
  common seeds (the search's fixed stage, --confirm-seeds N), and the answer's `budget` entry of
  `within_budget_vs_baseline` gives the budget verdict (within / over / not resolved).

The point scored is the confirmed `within_budget` w. Where no w is feasible enough the search
recommends none (a note) and the practitioner keeps MSE: scored as the space's lowest w, whose
objective and distortion are the baseline's (within 0.03% and 0.001 dB on the built-ins).

`BudgetTruth` scores any strategy's recommendation against the noise-free curves: whether it
truly violates the budget (its true distortion past the bound, relative to the baseline's true
mean) and its regret among the truly feasible weights (the true objective there minus the
true minimum over the feasible w; negative where an infeasible w beats every feasible one).
With `constrained` among the strategies every strategy is scored so, so `new` (the search
without the budget) shows how often ignoring the budget violates it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..constraints import Constraint, parse
from ..curves import Curve, load_curve
from ..distortion_curves import DISTORTIONS, METRIC, load_distortion
from ..errors import UserError
from ..sampler import CONSTRAINT_VALUE
from ..stats import merge_candidates, search_answer
from ..stats.constrained import budget_baseline
from ..vocab import BASELINE, CONFIRM_SEED_OFFSET, WITHIN_BUDGET
from .search_config import STRATEGIES, SearchBenchConfig
from .search_sim import Sim, outcome, repeat_seed
from .search_sim import simulate as simulate_unconstrained

CONSTRAINED = "constrained"


def validate_budget(bc: SearchBenchConfig) -> None:
    """--constraint and --distortion (UserError, one line): a built-in distortion curve reports
    val_psnr, so its budget must bound val_psnr."""
    constraint = parse(bc.constraint)
    load_distortion(bc.distortion)
    if bc.distortion in DISTORTIONS and constraint.metric != METRIC:
        raise UserError(f"--constraint {bc.constraint!r}: the built-in distortion curves report {METRIC}; "
                        f"bound {METRIC} (e.g. '{METRIC} >= -0.2') or give --distortion module:function")


@dataclass
class BudgetSim(Sim):
    """A repeat whose runs also report the constrained metric (the distortion curve) and whose
    sampler proposes within the budget once the baseline's mean is known."""

    distortion: Curve | None = None
    constraint: Constraint | None = None
    baseline_mean: float | None = None  # of the constrained metric; set once the baseline ran

    def row(self, role, with_mse, w, values, stopped, seed, candidate=None, round_=None) -> dict:
        r = super().row(role, with_mse, w, values, stopped, seed, candidate, round_)
        r[self.constraint.metric] = float(
            self.distortion(r["loss"], with_mse, r["w"], seed, len(values), self.bc.epochs))
        return r

    def sampler(self, **kwargs):
        return super().sampler(constraint=self.constraint, baseline_mean=self.baseline_mean, **kwargs)

    def before_tell(self, trial, row: dict) -> None:
        trial.set_user_attr(CONSTRAINT_VALUE, row[self.constraint.metric])  # as WeightSearch


def budget_sim(curve_spec: str, repeat: int, bc: SearchBenchConfig) -> BudgetSim:
    return BudgetSim(load_curve(curve_spec), bc, seed0=repeat_seed(bc, repeat),
                     distortion=load_distortion(bc.distortion), constraint=parse(bc.constraint))


def answer_of(sim: BudgetSim, rows: list[dict]) -> dict:
    """The loss's answer as the search gives it under the budget (`stats.search_answer`)."""
    bc = sim.bc
    return search_answer(rows, [bc.loss], epochs=bc.epochs, bounds={bc.loss: (bc.low, bc.high)},
                         lower_is_better=True, n_per_config=bc.baseline_seeds, min_effect=bc.min_effect,
                         constraint=sim.constraint)["losses"][bc.loss]


def constrained_search(sim: BudgetSim, budget: int) -> list[dict]:
    """The search stage's rows: the baseline first (its mean fixes the budget), then the
    loss's constrained study of `budget` trials, one after another."""
    base = sim.baseline(sim.bc.baseline_seeds)
    values = budget_baseline(base, sim.bc.epochs, sim.constraint)
    sim.baseline_mean = float(np.mean(values))
    return base + sim.gp_search(budget, pruned=True, early_stop=False)


def constrained_answer(sim: BudgetSim, rows: list[dict]) -> dict:
    """The outcome of one constrained search (its stage's `rows`): the confirmed `within_budget`
    point with the objective's verdict, and the budget's verdict, the note and what it cost."""
    bc = sim.bc
    first = answer_of(sim, rows)
    merged = merge_candidates(first["candidates"])
    confirm = sim.confirm(merged) + sim.baseline(bc.confirm_seeds, CONFIRM_SEED_OFFSET) if merged else []
    final = answer_of(sim, rows + confirm) if confirm else first
    point = first["candidates"].get(WITHIN_BUDGET)
    said = final["comparisons"].get(f"{WITHIN_BUDGET}_vs_baseline", {})
    loss_runs = sum(r["role"] != BASELINE for r in rows + confirm)
    out = outcome(point or {"with_mse": True, "w": bc.low}, said.get("verdict"), loss_runs,
                  len(rows + confirm) - loss_runs)
    return out | {"no_recommendation": point is None, "note": first["constrained"].get("note"),
                  "p_feasible": first["constrained"].get("p_feasible_at_recommended"),
                  "budget_verdict": said.get("budget", {}).get("verdict")}


def constrained_outcomes(curve_spec: str, repeat: int, bc: SearchBenchConfig) -> dict:
    """{budget: outcome} of one repeat; the longest search serves every budget (its first b
    trials are a b-trial search: trials run one after another), as `new`'s."""
    sim = budget_sim(curve_spec, repeat, bc)
    rows = constrained_search(sim, max(bc.budgets))
    return {b: constrained_answer(sim, rows[:bc.baseline_seeds + b]) for b in bc.budgets}  # baseline first


def simulate(curve_spec: str, repeat: int, bc: SearchBenchConfig) -> dict:
    """`search_sim.simulate`'s strategies and, when asked, `constrained`, on one repeat."""
    out = simulate_unconstrained(curve_spec, repeat, bc)
    if CONSTRAINED in bc.strategies:
        out[CONSTRAINED] = constrained_outcomes(curve_spec, repeat, bc)
    return out


# --- the truth under the budget ------------------------------------------------------------


@dataclass
class BudgetTruth:
    """Which w truly meet the budget and the best of them. `truth`: `search_score.Truth` of
    the objective (its grid of w, values there, `value(point)` and `baseline`)."""

    truth: object
    bc: SearchBenchConfig

    def __post_init__(self):
        bc, t = self.bc, self.truth
        self.constraint, self.distortion = parse(bc.constraint), load_distortion(bc.distortion)
        self.baseline_metric = float(self.distortion("mse", True, None, None, bc.epochs, bc.epochs))
        self.feasible = np.array([self.slack({"with_mse": True, "w": float(w)}) <= 0 for w in t.grid])
        values = list(t.values[self.feasible])
        if self.slack({"with_mse": False}) <= 0:
            values.append(t.no_mse)
        # nothing feasible: the best the budget allows is plain MSE
        self.minimum = float(min(values)) if values else float(t.baseline)
        ws = t.grid[self.feasible]
        self.feasible_w = [float(ws.min()), float(ws.max())] if ws.size else None

    def slack(self, point: dict) -> float:
        """The noise-free budget's slack at `point` (<= 0: within the budget)."""
        bc = self.bc
        value = self.distortion(bc.loss, point["with_mse"], point.get("w"), None, bc.epochs, bc.epochs)
        return self.constraint.slack(float(value), self.baseline_metric)

    def score(self, point: dict) -> dict:
        slack = self.slack(point)
        regret = self.truth.value(point) - self.minimum
        return {"violates": slack > 0, "true_slack": slack, "feasible_regret": regret,
                "feasible_regret_pct": 100 * regret / abs(self.truth.baseline)}

    def describe(self) -> dict:
        return {"constraint": str(self.constraint), "distortion": self.bc.distortion,
                "baseline_metric": self.baseline_metric, "feasible_minimum": self.minimum,
                "feasible_w": self.feasible_w, "binds": self.minimum > self.truth.minimum}


def median_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The distribution-free interval of a median: order statistics k and n + 1 - k, k from the
    binomial(n, 1/2) quantile, so that it covers the median with probability >= `level`."""
    x = np.sort(np.asarray(values, float))
    k = max(1, int(stats.binom.ppf((1 - level) / 2, x.size, 0.5)))
    return float(x[k - 1]), float(x[x.size - k])


def budget_lines(doc: dict) -> list[str]:
    """The summary's lines on the budget: per curve, each strategy's violation rate with its
    Wilson interval, its regret among feasible weights and the budget verdicts."""
    lines = []
    for curve, per in doc["curves"].items():
        b = per.get("budget")
        if not b:
            continue
        edge = "no w" if b["feasible_w"] is None else "w in [{:.3g}, {:.3g}]".format(*b["feasible_w"])
        binds = "binds" if b["binds"] else "does not bind"
        lines.append(f"\n{curve} under {b['constraint']} ({b['distortion']} distortion): feasible {edge}, "
                     f"best feasible {b['feasible_minimum']:.4g} (the budget {binds})")
        for strategy in STRATEGIES:
            for key, s in per.get(strategy, {}).items():
                lines.append(f"  {strategy:<11}{key:>7} {_budget_text(s)}")
    return lines


def _budget_text(s: dict) -> str:
    low, high = s["violation_interval95"]
    rlow, rhigh = s["feasible_regret_interval95"]
    verdicts = ", ".join(f"{k} {v}" for k, v in s.get("budget_verdicts", {}).items())
    return (f"violations {100 * s['violation_rate']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]; "
            f"regret among feasible {s['median_feasible_regret']:.3f} [{rlow:.3f}, {rhigh:.3f}] "
            f"({s['median_feasible_regret_pct']:.2f}% base); none feasible enough "
            f"{s['no_recommendation']}" + (f"; budget verdicts: {verdicts}" if verdicts else ""))
