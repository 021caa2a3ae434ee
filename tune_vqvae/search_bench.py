"""A benchmark of the search itself: `python -m tune_vqvae.bench search`.

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

Per curve, strategy and budget (trials per loss, paper points included, as --num-samples):
the regret of the recommended config (true objective there minus the true minimum over
the space, absolute and in % of the baseline), its distance in log10 w from the nearest
true minimiser, the rate of claimed gains, and the rate of false claims (a gain claimed
where the recommended config is not truly better than MSE). Trials run one after another
(the search runs `--max-concurrent` at once, so its GP sees fewer finished trials).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .curves import Curve, load_curve
from .errors import UserError, atomic_write_text, cli_entry, writable_dir_for_run
from .stats import answer as ans
from .vocab import BASELINE, BEST_OBSERVED, CONFIRM, PAPER, RECOMMENDED, SEARCH, paper_points

STRATEGIES = ("paper_grid", "old", "new", "new_asha")


@dataclass
class SearchBenchConfig:
    curves: list[str] = field(default_factory=lambda: ["realistic", "no_gain"])
    repeats: int = 100
    budgets: list[int] = field(default_factory=lambda: [16])
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    loss: str = "gmsd"
    low: float = 1e-3  # the search space of w (search_spaces/<loss>.yaml)
    high: float = 10.0
    epochs: int = 6
    grace: int = 2  # ASHA as the search configures it: epochs // 3, reduction factor 3
    reduction_factor: int = 3
    baseline_seeds: int = 3  # SearchConfig's defaults
    confirm_seeds: int = 3
    replicates: int = 1
    workers: int = 2
    seed: int = 0
    out_dir: str = "benchmarks/results"

    def validate(self) -> None:
        if self.repeats < 1 or self.workers < 1 or not self.budgets or min(self.budgets) < 5:
            raise UserError("--repeats and --workers must be >= 1, every budget >= 5 (4 paper points + 1)")
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown:
            raise UserError(f"unknown strategy {unknown[0]!r}; valid: {', '.join(STRATEGIES)}")
        if not 1 <= self.grace < self.epochs:
            raise UserError(f"--grace must be in 1..epochs-1, got {self.grace}")
        for c in self.curves:
            load_curve(c)


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

    def row(self, role, with_mse, w, values, stopped, seed, candidate=None) -> dict:
        loss = "mse" if role == BASELINE else self.bc.loss
        return {
            "experiment": {BASELINE: "baseline", CONFIRM: loss + "-confirm"}.get(role, loss),
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
        }

    def baseline(self, n: int) -> list[dict]:
        seeds = [self.seed0 + k for k in range(n)]
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

        from .sampler import WeightSampler

        study = optuna.create_study(sampler=WeightSampler(seed=self.seed0 // 10_000))  # the repeat
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
            seed = self.seed0 + int(replicate)
            values, stopped = self.run(with_mse, w, seed, asha, i, protected=is_paper)
            for step, v in enumerate(values, 1):
                t.report(v, step)
            if stopped and pruned:
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(t, values[-1])
            rows.append(self.row(PAPER if is_paper else SEARCH, with_mse, w, values, stopped, seed))
        return rows

    def confirm(self, named: dict[str, dict]) -> list[dict]:
        seeds = [self.seed0 + 1000 + k for k in range(self.bc.confirm_seeds)]
        return [
            self.row(CONFIRM, p["with_mse"], p.get("w"), *self.run(p["with_mse"], p.get("w"), s), s, name)
            for name, p in named.items()
            for s in seeds
        ]


def _best(rows: list[dict], epochs: int) -> dict:
    return min((r for r in rows if ans.is_full_length(r, epochs)), key=lambda r: r["value"])


def old_answer(sim: Sim, rows: list[dict]) -> tuple[dict, bool]:
    """(recommended point, claimed): the best single full-length run; a claim when it beats
    the single baseline run."""
    base = sim.baseline(1)[0]
    best = _best(rows, sim.bc.epochs)
    return {"with_mse": best["with_mse"], "w": best["w"]}, best["value"] < base["value"]


def new_answer(sim: Sim, rows: list[dict]) -> tuple[dict, bool, int]:
    """(recommended point, claimed, confirmation runs) as the search answers."""
    bc = sim.bc
    runs = ans.search_stage(rows, bc.loss, bc.epochs)
    surrogate = ans.fit_surrogate(runs, bc.epochs, (bc.low, bc.high), lower_is_better=True)
    named = ans.candidates(runs, surrogate, lower_is_better=True)
    confirm = sim.confirm(ans.merge_candidates(named))
    all_rows = rows + sim.baseline(bc.baseline_seeds) + confirm
    comps = ans.comparisons(all_rows, bc.loss, bc.epochs, lower_is_better=True)
    who = RECOMMENDED if RECOMMENDED in named else BEST_OBSERVED
    verdict = comps.get(f"{who}_vs_baseline", {}).get("verdict")
    return named[who], verdict == "better", len(confirm)


def simulate(curve_spec: str, repeat: int, bc: SearchBenchConfig) -> dict:
    """Every strategy and budget on one repeat: {strategy: {budget: (point, claimed, runs)}}."""
    sim = Sim(load_curve(curve_spec), bc, seed0=bc.seed + 10_000 * repeat)
    out: dict = {}
    if "paper_grid" in bc.strategies:
        point, claimed = old_answer(sim, sim.paper_grid())
        out["paper_grid"] = {b: (point, claimed, 4 + 1) for b in bc.budgets}
    for strategy in ("old", "new", "new_asha"):
        if strategy not in bc.strategies:
            continue
        out[strategy] = {}
        for budget in bc.budgets:
            rows = sim.gp_search(budget, pruned=strategy != "old", early_stop=strategy != "new")
            if strategy == "old":
                point, claimed = old_answer(sim, rows)
                out[strategy][budget] = (point, claimed, budget + 1)
            else:
                point, claimed, confirm_runs = new_answer(sim, rows)
                out[strategy][budget] = (point, claimed, budget + bc.baseline_seeds + confirm_runs)
    return out


# --- scoring -----------------------------------------------------------------------------


@dataclass
class Truth:
    """The noise-free curve of one loss: the minimum over the space and where it is."""

    curve: Curve
    bc: SearchBenchConfig

    def __post_init__(self):
        bc = self.bc
        self.grid = np.logspace(math.log10(bc.low), math.log10(bc.high), 2001)
        self.values = np.array([self.value({"with_mse": True, "w": float(w)}) for w in self.grid])
        self.baseline = float(self.curve("mse", True, None, None, bc.epochs, bc.epochs))
        self.no_mse = self.value({"with_mse": False})
        self.minimum = min(float(self.values.min()), self.no_mse)
        self.minimisers = np.log10(self.grid[self.values <= self.minimum + 1e-9 * abs(self.minimum)])

    def value(self, point: dict) -> float:
        bc = self.bc
        return float(self.curve(bc.loss, point["with_mse"], point.get("w"), None, bc.epochs, bc.epochs))

    def score(self, point: dict, claimed: bool) -> dict:
        regret = self.value(point) - self.minimum
        distance = (
            float(np.min(np.abs(self.minimisers - math.log10(point["w"]))))
            if point["with_mse"] and len(self.minimisers)
            else None
        )
        truly_better = self.value(point) < self.baseline
        return {
            "regret": regret,
            "regret_pct": 100 * regret / abs(self.baseline),
            "log10_distance": distance,
            "claimed": claimed,
            "false_claim": claimed and not truly_better,
        }


def summarise(scores: list[dict], runs: list[int]) -> dict:
    regret = np.array([s["regret"] for s in scores])
    dist = np.array([s["log10_distance"] for s in scores if s["log10_distance"] is not None])
    return {
        "repeats": len(scores),
        "median_regret": float(np.median(regret)),
        "mean_regret": float(regret.mean()),
        "regret_q25": float(np.quantile(regret, 0.25)),
        "regret_q75": float(np.quantile(regret, 0.75)),
        "median_regret_pct": float(np.median([s["regret_pct"] for s in scores])),
        "median_log10_distance": float(np.median(dist)) if dist.size else None,
        "no_mse_recommended": sum(s["log10_distance"] is None for s in scores),
        "claim_rate": float(np.mean([s["claimed"] for s in scores])),
        "false_claim_rate": float(np.mean([s["false_claim"] for s in scores])),
        "runs_per_search": float(np.mean(runs)),
        "regrets": [round(float(r), 4) for r in regret],
    }


# --- running it --------------------------------------------------------------------------


def _init_worker() -> None:
    import optuna
    import torch

    torch.set_num_threads(1)  # small GP matrices: one thread per worker beats contention
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _task(args):
    curve_spec, repeat, bc = args
    return curve_spec, repeat, simulate(curve_spec, repeat, bc)


def run_bench(bc: SearchBenchConfig, progress=print) -> dict:
    tasks = [(c, r, bc) for c in bc.curves for r in range(bc.repeats)]
    raw: dict = {c: [] for c in bc.curves}
    start = time.perf_counter()
    if bc.workers == 1:
        _init_worker()
        results = map(_task, tasks)
    else:
        pool = ProcessPoolExecutor(bc.workers, initializer=_init_worker)
        results = pool.map(_task, tasks)
    for k, (curve_spec, _, out) in enumerate(results, 1):
        raw[curve_spec].append(out)
        if k % max(1, len(tasks) // 10) == 0:
            progress(f"  {k}/{len(tasks)} searches done, {time.perf_counter() - start:.0f} s")
    if bc.workers > 1:
        pool.shutdown()
    return score(bc, raw) | {"seconds": time.perf_counter() - start}


def score(bc: SearchBenchConfig, raw: dict) -> dict:
    results: dict = {}
    for curve_spec, repeats in raw.items():
        truth = Truth(load_curve(curve_spec), bc)
        per = results[curve_spec] = {
            "true_minimum": truth.minimum,
            "baseline": truth.baseline,
            "true_best_log10_w": [float(truth.minimisers.min()), float(truth.minimisers.max())],
            "gain_exists": truth.minimum < truth.baseline,
        }
        for strategy in bc.strategies:
            per[strategy] = {}
            for budget in bc.budgets:
                picks = [rep[strategy][budget] for rep in repeats]
                per[strategy][str(budget)] = summarise(
                    [truth.score(point, claimed) for point, claimed, _ in picks], [n for *_, n in picks]
                )
    return {"curves": results, "targets": targets(bc, results)}


def targets(bc: SearchBenchConfig, results: dict) -> dict:
    """Issue 12's bars, each judged with its 95% interval: new median regret <= half the old's
    (curves with a gain); a false gain claimed in <= 5% of the searches on curves without one.
    `met`: True where the whole interval meets the bar, False where it misses it entirely,
    None (not resolved: more repeats) where it straddles it."""
    out = {}
    for curve, per in results.items():
        for new_name in ("new", "new_asha"):
            if "old" in per and new_name in per:
                out.update(_targets(curve, per, per["old"], per[new_name], new_name, bc.budgets))
    return out


def _judged(low: float, high: float, bar: float) -> bool | None:
    return True if high <= bar else False if low > bar else None


def median_ratio_interval(new: list[float], old: list[float], resamples: int = 2000,
                          seed: int = 0) -> tuple[float, float]:
    """95% paired-bootstrap interval of median(new) / median(old): repeat k of every strategy
    is one simulated world (one noise seed), so repeats are resampled together."""
    new, old = np.asarray(new, float), np.asarray(old, float)
    idx = np.random.default_rng(seed).integers(0, new.size, (resamples, new.size))
    old_med = np.median(old[idx], axis=1)
    ratios = np.median(new[idx], axis=1)[old_med > 0] / old_med[old_med > 0]
    return float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


def rate_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's 95% score interval of a rate of k in n (sound at k = 0 or 1 of 100)."""
    p, d = k / n, 1 + z * z / n
    centre, half = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def _targets(curve: str, per: dict, old_all: dict, new_all: dict, name: str, budgets) -> dict:
    out = {}
    for budget in map(str, budgets):
        new, old = new_all[budget], old_all[budget]
        key = f"{curve}/{name}/{budget}"
        if per["gain_exists"]:
            if old["median_regret"] <= 0:
                out[key] = {"new_over_old_median_regret": None, "met": None}
                continue
            low, high = median_ratio_interval(new["regrets"], old["regrets"])
            out[key] = {"new_over_old_median_regret": new["median_regret"] / old["median_regret"],
                        "interval95": [low, high], "bar": 0.5, "met": _judged(low, high, 0.5)}
        else:
            n = len(new["regrets"])
            low, high = rate_interval(round(new["false_claim_rate"] * n), n)
            out[key] = {"new_false_claim_rate": new["false_claim_rate"], "interval95": [low, high],
                        "bar": 0.05, "met": _judged(low, high, 0.05)}
    return out


def print_summary(doc: dict) -> None:
    for curve, per in doc["curves"].items():
        print(
            f"\n{curve}: true minimum {per['true_minimum']:.4g} (baseline {per['baseline']:.4g}; "
            f"{'a gain exists' if per['gain_exists'] else 'nothing beats MSE'})"
        )
        print(
            f"  {'strategy':<11}{'budget':>7}{'runs':>7}{'med regret':>12}{'(% base)':>10}"
            f"{'IQR':>18}{'med |dlog10 w|':>16}{'claims':>8}{'false':>8}"
        )
        for strategy in STRATEGIES:
            for budget, s in per.get(strategy, {}).items():
                dist = "-" if s["median_log10_distance"] is None else f"{s['median_log10_distance']:.3f}"
                print(
                    f"  {strategy:<11}{budget:>7}{s['runs_per_search']:>7.1f}{s['median_regret']:>12.3f}"
                    f"{s['median_regret_pct']:>9.2f}%  "
                    f"[{s['regret_q25']:.2f}, {s['regret_q75']:.2f}]".ljust(68)
                    + f"{dist:>10}{100 * s['claim_rate']:>7.0f}%{100 * s['false_claim_rate']:>7.0f}%"
                )
    for key, t in doc["targets"].items():
        what = "new/old median regret" if "new_over_old_median_regret" in t else "false claim rate"
        value = t.get("new_over_old_median_regret", t.get("new_false_claim_rate"))
        if value is None:
            print(f"target {key}: {what} undefined (old regret 0)")
            continue
        low, high = t["interval95"]
        verdict = {True: "met", False: "missed", None: "not resolved (more repeats)"}[t["met"]]
        print(f"target {key}: {what} {value:.3g} [{low:.3g}, {high:.3g}] (95%) vs <= {t['bar']:g}: {verdict}")


def build_parser() -> argparse.ArgumentParser:
    d = SearchBenchConfig()
    p = argparse.ArgumentParser(prog="python -m tune_vqvae.bench search", description=__doc__.split("\n")[0])
    p.add_argument(
        "--curve",
        action="append",
        help=f"built-in (realistic, no_gain) or module:function; repeatable (default {' '.join(d.curves)})",
    )
    p.add_argument("--repeats", type=int, default=d.repeats, help="searches per curve")
    p.add_argument(
        "--budgets", default=",".join(map(str, d.budgets)), help="trials per loss, comma-separated"
    )
    p.add_argument("--strategies", default=",".join(d.strategies))
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--grace", type=int, help="ASHA grace period (default epochs // 3)")
    p.add_argument("--baseline-seeds", type=int, default=d.baseline_seeds)
    p.add_argument("--confirm-seeds", type=int, default=d.confirm_seeds)
    p.add_argument("--replicates", type=int, default=d.replicates)
    p.add_argument("--workers", type=int, default=min(d.workers, os.cpu_count() or 1))
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out-dir", default=d.out_dir)
    return p


def config_from_args(a) -> SearchBenchConfig:
    try:
        budgets = [int(b) for b in a.budgets.split(",")]
    except ValueError:
        raise UserError(f"--budgets {a.budgets!r}: give integers separated by commas, e.g. 8,16") from None
    bc = SearchBenchConfig(
        curves=a.curve or SearchBenchConfig().curves,
        repeats=a.repeats,
        budgets=budgets,
        strategies=a.strategies.split(","),
        epochs=a.epochs,
        grace=a.grace or max(1, a.epochs // 3),
        baseline_seeds=a.baseline_seeds,
        confirm_seeds=a.confirm_seeds,
        replicates=a.replicates,
        workers=a.workers,
        seed=a.seed,
        out_dir=a.out_dir,
    )
    bc.validate()
    return bc


@cli_entry
def main(argv=None) -> int:
    bc = config_from_args(build_parser().parse_args(argv))
    with writable_dir_for_run(bc.out_dir, "--out-dir") as out:  # before the run, not after it
        return _run_and_write(bc, out)


def _run_and_write(bc: SearchBenchConfig, out: Path) -> int:
    print(
        f"search benchmark: {bc.repeats} searches per curve ({', '.join(bc.curves)}), budgets "
        f"{bc.budgets}, strategies {', '.join(bc.strategies)}, {bc.workers} workers",
        flush=True,
    )
    doc = {
        "environment": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"),
        },
        "settings": dataclasses.asdict(bc),
    } | run_bench(bc)
    print_summary(doc)
    tag = "+".join(c.replace(":", "_").replace(".", "_") for c in bc.curves)
    path = out / f"cpu-{doc['environment']['date']}-search-{tag}.json"
    atomic_write_text(path, json.dumps(doc, indent=1))
    print(f"\n{doc['seconds']:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
