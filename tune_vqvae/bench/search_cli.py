"""A benchmark of the search itself: `python -m tune_vqvae.bench search`.

Its flags (-> `SearchBenchConfig`), the printed
summary and the JSON in --out-dir (written atomically). What it simulates is in
`search_sim`, how it scores in `search_score`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

from ..errors import UserError, atomic_write_text, cli_entry, writable_dir_for_run
from .search_budget import budget_lines, validate_budget
from .search_config import STRATEGIES, SearchBenchConfig
from .search_score import run_bench


def print_summary(doc: dict) -> None:
    for curve, per in doc["curves"].items():
        print(
            f"\n{curve}: true minimum {per['true_minimum']:.4g} (baseline {per['baseline']:.4g}; "
            f"{'a gain exists' if per['gain_exists'] else 'nothing beats MSE'})"
        )
        print(
            f"  {'strategy':<11}{'budget':>7}{'runs':>7}{'(loss':>7}{'+ base)':>8}"
            f"{'med regret':>12}{'(% base)':>10}"
            f"{'IQR':>18}{'med |dlog10 w|':>16}{'claims':>8}{'false':>8}{'equiv':>7}"
        )
        for strategy in STRATEGIES:
            for budget, s in per.get(strategy, {}).items():
                dist = "-" if s["median_log10_distance"] is None else f"{s['median_log10_distance']:.3f}"
                print(
                    f"  {strategy:<11}{budget:>7}{s['runs_per_search']:>7.1f}{s['loss_runs']:>7.1f}"
                    f"{s['baseline_runs']:>8.1f}{s['median_regret']:>12.3f}"
                    f"{s['median_regret_pct']:>9.2f}%  "
                    f"[{s['regret_q25']:.2f}, {s['regret_q75']:.2f}]".ljust(82)
                    + f"{dist:>10}{100 * s['claim_rate']:>7.0f}%{100 * s['false_claim_rate']:>7.0f}%"
                    f"{100 * s['equivalent_rate']:>6.0f}%"
                )
    for line in budget_lines(doc):  # with strategy constrained: every strategy under the budget
        print(line)
    for key, t in doc["targets"].items():
        if "bar" in t and isinstance(t["bar"], str):  # issue 21's
            iv = t.get("interval95")
            iv_text = f" [{iv[0]:.3g}, {iv[1]:.3g}]" if iv else ""
            runs = (f"; {t['runs_per_search']:.1f} runs (today {t['runs_bar']})"
                    if "runs_per_search" in t else "")
            verdict = {True: "met", False: "missed", None: "not resolved"}[t["met"]]
            print(f"target {key}: {t['value']:.3g}{iv_text} vs {t['bar']}: {verdict}{runs}")
            continue
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
        help="built-in (realistic, no_gain, narrow; NAME@RHO: the measured noise, same-seed correlation "
        f"RHO) or module:function; repeatable (default {' '.join(d.curves)})",
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
    p.add_argument("--search-seeds", default=d.search_seeds, help="the search stage's training seeds: "
                   "shared (as the search: every trial --seed) or distinct (one per trial)")
    p.add_argument("--paired-splits", default=",".join(d.paired_splits),
                   help="paired, live: SEARCH+CONFIRM runs per split, comma-separated (e.g. 8+24,12+20); "
                   "SEARCH+CONFIRMxB: the race's baseline trains B runs a round (e.g. 8+20x3)")
    p.add_argument("--paired-candidates", default=",".join(d.paired_candidates),
                   help="paired: which candidates race the baseline (recommended, best_paper, best_observed)")
    p.add_argument("--min-effect", type=float, default=d.min_effect,
                   help="equivalence margin, %% of the baseline")
    p.add_argument("--constraint", default=d.constraint,
                   help=f"constrained: the distortion budget, as the search's --constraint "
                   f"(default {d.constraint!r})")
    p.add_argument("--distortion", default=d.distortion,
                   help="constrained: the distortion curve (measured, binding; tune_vqvae.distortion_curves) "
                   f"or module:function (default {d.distortion})")
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
        search_seeds=a.search_seeds,
        paired_splits=a.paired_splits.split(","),
        paired_candidates=a.paired_candidates.split(","),
        min_effect=a.min_effect,
        constraint=a.constraint,
        distortion=a.distortion,
        workers=a.workers,
        seed=a.seed,
        out_dir=a.out_dir,
    )
    bc.validate()
    validate_budget(bc)
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
