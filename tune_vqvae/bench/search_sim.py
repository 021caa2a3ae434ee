"""A benchmark of the search itself (`python -m tune_vqvae.bench search`): what it simulates.

Repeats whole searches in-process, without Ray, on synthetic objective curves
(`tune_vqvae.curves`: a run's value is `curve(loss, with_mse, w, seed, epoch, epochs)`),
driving the code the search runs: the sampler (`tune_vqvae.sampler.WeightSampler`, Optuna's
GPSampler as the search configures it, the paper points enqueued first), the stopping rule
(`AsyncHalving`, Ray's ASHA as `ProtectedASHA` configures it, checked against Ray's in
tests/test_search_bench.py) and the answer (`tune_vqvae.stats`: surrogate, candidates,
verdicts). Strategies:

- `paper_grid`: the paper's 4 points and one baseline run; answer: the best point.
- `old`: the search before issue 12: GP on log w, early-stopped trials told COMPLETE with
  their early value, one baseline run; answer: the best single full-length run, and a gain
  "claimed" whenever that run beats the baseline run (the console printed it as a gain).
- `new`: the search as shipped: every trial trains all epochs, `baseline_seeds` baseline
  runs, the surrogate's recommended w, the confirmation stage (`confirm_seeds` fresh seeds
  for each candidate); a gain is claimed when the verdict of recommended vs baseline is
  "better".
- `new_asha`: `new` with `--early-stop` (ASHA; stopped trials PRUNED, never fitted).
  Before 2026-11-26 these two were called `new_no_stop` and `new` (ASHA was the default).
- `paired` (issue 21): `new`'s search stage with S trials, then the sequential paired
  confirmation (`tune_vqvae.stats.sequential.race`) of the recommended w against the
  baseline on common seeds under a budget of C runs (the baseline's included), verdicts
  with the equivalence margin `min_effect`; reported per split "S+C" (`--paired-splits`),
  so the benchmark shows where runs are better spent; "S+CxB": the baseline trains B runs
  a round (`--race-baseline-runs B`), counted in C. A gain is claimed on "better".
- `live` (issue 21): the search's own `--confirm-budget C` after S search trials: the
  recommended w (`stats.race.raced_candidate`) races the baseline, one round of rows at a
  time, each look decided by `stats.race.race_of` on the rows exactly as
  `search/_confirm.confirm_race` does; the verdict is `race_comparisons`'. On the same seeds
  as `paired --paired-candidates recommended` it decides the same, look for look.
- `constrained` (issue 24): the search under a distortion budget (`search_budget`).

Per curve, strategy and budget (trials per loss, paper points included, as --num-samples):
the regret of the recommended config (true objective there minus the true minimum over
the space, absolute and in % of the baseline), its distance in log10 w from the nearest
true minimiser, the rate of claimed gains (the power, where a gain exists) with its Wilson interval, the rate
of false claims (a gain claimed where the recommended config is not truly better than MSE),
the rate of "equivalent within min_effect%" verdicts, and the mean runs per search: of the
loss and of the baseline apart (one baseline serves every loss of a search), and together.
`new` and `paired` share each repeat's search stage (its first S trials are an S-trial
search: trials run one after another). Trials run one after another
(the search runs `--max-concurrent` at once, so its GP sees fewer finished trials).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..curves import Curve, load_curve
from ..stats import answer as ans
from ..stats import equivalence, sequential
from ..stats.race import RaceSettings, race_comparisons, race_key, race_of, raced_candidate
from ..vocab import (
    BASELINE,
    BASELINE_EXPERIMENT,
    BEST_OBSERVED,
    CONFIRM,
    CONFIRM_SEED_OFFSET,
    CONFIRM_SUFFIX,
    PAPER,
    RECOMMENDED,
    SEARCH,
    paper_points,
    race_seeds,
    search_seed,
)
from .search_config import SearchBenchConfig, split_of

# --- the stopping rule -------------------------------------------------------------------


class AsyncHalving:
    """Ray's asynchronous successive halving, one bracket (`ASHAScheduler` with its defaults,
    `ray.tune.schedulers.async_hyperband._Bracket`): rungs at grace * rf^k epochs; a trial
    reaching a rung is stopped when its value is worse than the (1 - 1/rf) quantile of the
    values recorded there so far, and is recorded either way. Values are minimised."""

    def __init__(self, grace: int, max_t: int, rf: int = 3):
        n = int(np.log(max_t / grace) / np.log(rf) + 1)
        self.rungs = [(grace * rf**k, {}) for k in reversed(range(n))]
        self.rf = rf

    def stops(self, key, epoch: int, value: float) -> bool:
        reward = -value  # Ray's ASHA maximises metric_op * value; mode "min": -value
        for milestone, recorded in self.rungs:
            if epoch < milestone or key in recorded:
                continue
            cutoff = np.nanpercentile(list(recorded.values()), (1 - 1 / self.rf) * 100) if recorded else None
            recorded[key] = reward
            return cutoff is not None and reward < cutoff
        return False


# --- one simulated search ----------------------------------------------------------------


@dataclass
class Sim:
    """One repeat: the curve, the settings, and the seed base of its runs."""

    curve: Curve
    bc: SearchBenchConfig
    seed0: int

    def run(
        self,
        with_mse: bool,
        w: float | None,
        seed: int,
        asha=None,
        key=None,
        protected=False,
        loss: str | None = None,
    ):
        """One training run of the loss (or of `loss`), epoch by epoch under ASHA: (values, stopped)."""
        loss, epochs = loss or self.bc.loss, self.bc.epochs
        values = []
        for epoch in range(1, epochs + 1):
            values.append(float(self.curve(loss, with_mse, w if with_mse else None, seed, epoch, epochs)))
            if asha is not None and asha.stops(key, epoch, values[-1]) and not protected and epoch < epochs:
                return values, True
        return values, False

    def row(self, role, with_mse, w, values, stopped, seed, candidate=None, round_=None) -> dict:
        loss = "mse" if role == BASELINE else self.bc.loss
        return {
            "experiment": self.experiment(role, loss, seed),
            "loss": loss,
            "role": role,
            "with_mse": with_mse,
            "w": w if with_mse else None,
            "value": values[-1],
            "status": "STOPPED" if stopped else "COMPLETED",
            "epochs_trained": len(values),
            "stopped": stopped,
            "seed": seed,
            "candidate": candidate,
            "round": round_,
        }

    def experiment(self, role: str, loss: str, seed: int) -> str:
        """The Tune experiment a run of the search would sit in: the baseline's own seeds in
        the baseline experiment, its later runs (confirmation, race) in a confirm one."""
        if role == BASELINE:
            later = seed - self.seed0 >= CONFIRM_SEED_OFFSET
            return BASELINE_EXPERIMENT + CONFIRM_SUFFIX if later else BASELINE_EXPERIMENT
        return loss + CONFIRM_SUFFIX if role == CONFIRM else loss

    def baseline(self, n: int, offset: int = 0) -> list[dict]:
        """n baseline runs, seeds from seed0 + offset (CONFIRM_SEED_OFFSET: the confirmation's)."""
        seeds = [self.seed0 + offset + k for k in range(n)]
        return [self.row(BASELINE, True, None, *self.run(True, None, s, loss="mse"), s) for s in seeds]

    def paper_grid(self) -> list[dict]:
        return [
            self.row(
                PAPER, p["with_mse"], p.get("w"), *self.run(p["with_mse"], p.get("w"), self.seed0), self.seed0
            )
            for p in paper_points()
        ]

    def gp_search(self, budget: int, pruned: bool, early_stop: bool = True) -> list[dict]:
        """The loss's Optuna study as WeightSearch drives it, trials one after another.
        pruned=False is the old behaviour: stopped trials told COMPLETE (optuna/optuna#3100)."""
        import optuna

        study = optuna.create_study(sampler=self.sampler())
        for p in paper_points():
            study.enqueue_trial(dict(p))
        asha = AsyncHalving(self.bc.grace, self.bc.epochs, self.bc.reduction_factor) if early_stop else None
        rows = []
        for i in range(budget):
            t = study.ask()
            replicate = t.user_attrs.get("replicate")
            with_mse = t.suggest_categorical("with_mse", [True, False])
            w = t.suggest_float("w", self.bc.low, self.bc.high, log=True) if with_mse else None
            if replicate is None:  # a proposal: its replicates next, as WeightSearch queues them
                replicate = 0
                for k in range(1, self.bc.replicates):
                    study.enqueue_trial(dict(t.params), user_attrs={"replicate": k})
            is_paper = any(
                p["with_mse"] == with_mse and (not with_mse or math.isclose(p["w"], w))
                for p in paper_points()
            )
            shared = self.bc.search_seeds == "shared"
            seed = self.seed0 + int(replicate) if shared else search_seed(self.seed0, t.number)
            values, stopped = self.run(with_mse, w, seed, asha, i, protected=is_paper)
            for step, v in enumerate(values, 1):
                t.report(v, step)
            rows.append(self.row(PAPER if is_paper else SEARCH, with_mse, w, values, stopped, seed))
            self.before_tell(t, rows[-1])
            if stopped and pruned:
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(t, values[-1])
        return rows

    def sampler(self, **budget):
        """The loss's sampler as the search builds it (search_budget's adds the budget)."""
        from ..sampler import WeightSampler

        return WeightSampler(seed=self.seed0 // 10_000, **budget)  # the repeat

    def before_tell(self, trial, row: dict) -> None:
        """What WeightSearch keeps on a trial before telling Optuna: nothing without a budget."""

    def confirm(self, named: dict[str, dict]) -> list[dict]:
        seeds = [self.seed0 + CONFIRM_SEED_OFFSET + k for k in range(self.bc.confirm_seeds)]
        return [
            self.row(CONFIRM, p["with_mse"], p.get("w"), *self.run(p["with_mse"], p.get("w"), s), s, name)
            for name, p in named.items()
            for s in seeds
        ]


def _best(rows: list[dict], epochs: int) -> dict:
    return min((r for r in rows if ans.is_full_length(r, epochs)), key=lambda r: r["value"])


def outcome(point: dict, verdict: str | None, loss_runs: int, baseline_runs: int) -> dict:
    """What one strategy answered in one repeat, and what it cost."""
    return {"point": point, "claimed": verdict == equivalence.BETTER,
            "equivalent": verdict == equivalence.EQUIVALENT,
            "loss_runs": loss_runs, "baseline_runs": baseline_runs}


def old_answer(sim: Sim, rows: list[dict]) -> tuple[dict, bool]:
    """(recommended point, claimed): the best single full-length run; a claim when it beats
    the single baseline run."""
    base = sim.baseline(1)[0]
    best = _best(rows, sim.bc.epochs)
    return {"with_mse": best["with_mse"], "w": best["w"]}, best["value"] < base["value"]


def search_candidates(sim: Sim, rows: list[dict]) -> dict[str, dict]:
    """{candidate name: point} of a search stage's rows, as the search's answer names them."""
    bc = sim.bc
    runs = ans.search_stage(rows, bc.loss, bc.epochs)
    surrogate = ans.fit_surrogate(runs, bc.epochs, (bc.low, bc.high), lower_is_better=True)
    return ans.candidates(runs, surrogate, lower_is_better=True)


def new_answer(sim: Sim, rows: list[dict]) -> dict:
    """The shipped search's answer; its verdict with the margin (better / equivalent / ...)."""
    bc = sim.bc
    named = search_candidates(sim, rows)
    confirm = sim.confirm(ans.merge_candidates(named))
    all_rows = rows + sim.baseline(bc.baseline_seeds) + confirm
    comps = ans.comparisons(all_rows, bc.loss, bc.epochs, lower_is_better=True, min_effect=bc.min_effect)
    who = RECOMMENDED if RECOMMENDED in named else BEST_OBSERVED
    said = comps.get(f"{who}_vs_baseline", {}).get("verdict")  # the answer's own, with the margin
    return outcome(named[who], said, len(rows) + len(confirm), bc.baseline_seeds)


def paired_answer(sim: Sim, rows: list[dict], confirm_budget: int, named: dict[str, dict],
                  baseline_runs: int = 1) -> dict:
    """`new`'s candidates (`named`, of `rows`), confirmed by the sequential paired race on
    common seeds, the baseline on `baseline_runs` seeds a round."""
    bc = sim.bc
    chosen = {k: v for k, v in named.items() if k in bc.paired_candidates}
    chosen = chosen or {BEST_OBSERVED: named[BEST_OBSERVED]}  # no surrogate fitted: the best run
    merged = ans.merge_candidates(chosen)

    def run_round(k: int, names: list[str]) -> dict:
        seeds = race_seeds(sim.seed0, k, baseline_runs)  # as the search's race: [0] is the common seed
        out: dict = {sequential.BASE: [sim.run(True, None, s, loss="mse")[0][-1] for s in seeds]}
        for name in names:
            out[name] = sim.run(merged[name]["with_mse"], merged[name].get("w"), seeds[0])[0][-1]
        return out

    r = sequential.race(run_round, list(merged), confirm_budget, bc.min_effect, baseline_runs=baseline_runs)
    pick = r.best()
    return outcome(merged[pick], r.verdicts[pick], len(rows) + r.runs, r.baseline_runs)


def live_answer(sim: Sim, rows: list[dict], confirm_budget: int, named: dict[str, dict],
                baseline_runs: int = 1) -> dict:
    """The search's sequential confirmation (`--confirm-budget`) of the candidate it races
    (`stats.race.raced_candidate` of `named`), looked at through the rows as
    `search/_confirm.confirm_race` does."""
    bc = sim.bc
    points = {race_key(bc.loss, n): p for n, p in raced_candidate(named).items()}
    raced, race_rows = None, []
    while raced is None or not raced.state.stopped:
        rounds = range(sequential.FIRST_LOOK) if raced is None else [raced.state.rounds]
        alive = list(points) if raced is None else raced.state.alive
        for k in rounds:
            seeds = race_seeds(sim.seed0, k, baseline_runs)
            race_rows += [sim.row(BASELINE, True, None, *sim.run(True, None, s, loss="mse"), s, None, k)
                          for s in seeds]
            seed = seeds[0]
            for name in alive:
                with_mse, w = points[name]["with_mse"], points[name].get("w")
                race_rows.append(sim.row(CONFIRM, with_mse, w, *sim.run(with_mse, w, seed), seed,
                                         name.partition(":")[2], k))
        settings = RaceSettings(confirm_budget, bc.min_effect, baseline_runs=baseline_runs)
        raced = race_of(rows + race_rows, settings, epochs=bc.epochs, lower_is_better=True)
    who = RECOMMENDED if RECOMMENDED in named else BEST_OBSERVED
    said = race_comparisons(raced, bc.loss, bc.epochs).get(f"{who}_vs_baseline", {}).get("verdict")
    return outcome(named[who], said, len(rows) + raced.state.runs, raced.state.baseline_runs)


def repeat_seed(bc: SearchBenchConfig, repeat: int) -> int:
    """The seed base of one repeat's runs (its sampler's seed: seed0 // 10_000)."""
    return bc.seed + 10_000 * repeat


def simulate(curve_spec: str, repeat: int, bc: SearchBenchConfig) -> dict:
    """Every strategy and budget on one repeat: {strategy: {budget or split: outcome}}."""
    sim = Sim(load_curve(curve_spec), bc, seed0=repeat_seed(bc, repeat))
    out: dict = {}
    if "paper_grid" in bc.strategies:
        point, claimed = old_answer(sim, sim.paper_grid())
        out["paper_grid"] = {b: outcome(point, "better" if claimed else None, 4, 1) for b in bc.budgets}
    for strategy in ("old", "new_asha"):
        if strategy in bc.strategies:
            out[strategy] = {}
            for budget in bc.budgets:
                rows = sim.gp_search(budget, pruned=strategy != "old")
                if strategy == "old":
                    point, claimed = old_answer(sim, rows)
                    out[strategy][budget] = outcome(point, "better" if claimed else None, budget, 1)
                else:
                    out[strategy][budget] = new_answer(sim, rows)
    splits = {t: split_of(t) for t in bc.paired_splits} if {"paired", "live"} & set(bc.strategies) else {}
    longest = max([*(bc.budgets if "new" in bc.strategies else []), *(s for s, _, _ in splits.values())],
                  default=0)
    if longest:
        # shared: its first b trials are a b-trial search (trials run one after another)
        rows = sim.gp_search(longest, pruned=True, early_stop=False)
        if "new" in bc.strategies:
            out["new"] = {b: new_answer(sim, rows[:b]) for b in bc.budgets}
        named = {s: search_candidates(sim, rows[:s]) for s, _, _ in splits.values()}  # one GP fit each
        for strategy, answer in (("paired", paired_answer), ("live", live_answer)):
            if splits and strategy in bc.strategies:
                out[strategy] = {t: answer(sim, rows[:s], c, named[s], b) for t, (s, c, b) in splits.items()}
    return out
