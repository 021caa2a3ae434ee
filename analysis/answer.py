"""The answer of a search as the report shows it (issue 12): per loss the surrogate's curve of
the objective over log w and its recommended w, the verdicts of the confirmation stage against
the MSE baseline and the best paper point, and the run-to-run noise with the effect it hides.

Nothing here decides anything: the trials become the search's own results rows (`rows_of`),
and `tune_vqvae.stats.search_answer` computes the answer from them exactly as the search did
(which runs count, the candidates, the fits, the verdicts). This module only turns that answer
into the report's objects (`Curve`, `Comparison`) and tables.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tune_vqvae import constraints, objectives, vocab
from tune_vqvae.errors import UserError
from tune_vqvae.stats import search_answer
from tune_vqvae.stats.answer import TOO_FEW, pairing_text, percent_interval, verdict_text
from tune_vqvae.stats.constrained import budget_text
from tune_vqvae.stats.equivalence import DEFAULT_MIN_EFFECT
from tune_vqvae.stats.intervals import Interval, mean_interval, run_noise
from tune_vqvae.stats.noise import HALF_KEYS
from tune_vqvae.stats.race import RaceSettings
from tune_vqvae.stats.runs import (
    baseline_values,
    confirm_values,
    is_full_length,
    merge_candidates,
    point_of,
    search_stage,
    weights_of,
)
from tune_vqvae.stats.surrogate import SurrogateFit
from tune_vqvae.vocab import PAPER, SEARCH, SETTINGS_FILE, point_name

from . import load

# The report's states -> the status the search's results rows spell (vocab).
STATUS = {load.COMPLETED: vocab.COMPLETED, load.STOPPED: vocab.STOPPED, load.DIVERGED: vocab.DIVERGED,
          load.FAILED: vocab.ERROR}
# How the report says the search's candidate names.
REASONS = {vocab.RECOMMENDED: "recommended w", vocab.BEST_PAPER: "best paper point",
           vocab.BEST_OBSERVED: "best observed", vocab.WITHIN_BUDGET: "best w within budget"}


@dataclass
class Curve:
    """The surrogate of one loss, or why there is none (`fit` None, `note` says why)."""

    loss: str
    fit: SurrogateFit | None
    bounds: tuple[float, float]
    epochs: float
    runs: int  # full-length with-MSE runs fitted
    left_out: int  # stopped early / not finished: not fitted
    note: str = ""


@dataclass
class Comparison:
    """One candidate config of a loss against a reference config, from replicates."""

    loss: str
    config: str  # point name, e.g. w=0.5
    why: str  # recommended / best paper point / best observed, joined
    n: int
    mean: Interval | None  # t interval of the candidate's mean (None below 2 runs)
    values: list[float] = field(default_factory=list)
    vs_baseline: Interval | None = None
    verdict_baseline: str = ""  # better / worse / equivalent / not resolved (stats.equivalence)
    said_baseline: str = ""  # that verdict as the console says it (stats.answer.verdict_text)
    percent: Interval | None = None  # vs_baseline in % of the baseline mean, as the answer has it
    largest_gain: float | None = None  # % of the baseline mean the runs leave possible
    min_effect: float | None = None  # the equivalence margin it was judged with
    vs_paper: Interval | None = None
    verdict_paper: str = ""
    paper_config: str = ""  # the best paper point compared with
    pairing: str = ""  # vs the baseline: "paired, r = 0.99 [0.90, 1.00]" / "unpaired" (stats' words)
    pairing_paper: str = ""  # vs the best paper point, alike
    round: int | None = None  # a sequential confirmation: the rounds at this verdict's look
    dropped_by: str | None = None  # ... and who ended its race: "baseline" or a rival's name
    budget: dict | None = None  # --constraint: the same runs on the budget's metric (stats.constrained)
    said_budget: str = ""  # that budget entry as the console says it (stats.constrained.budget_text)


# --- the search's rows -----------------------------------------------------------------------

def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _seed(v) -> int | None:
    v = _num(v)
    return None if v is None else int(v)


def rows_of(trials: pd.DataFrame) -> list[dict]:
    """The trials as the search's results rows (tune_vqvae.stats.runs says which count)."""
    rows = []
    for t in trials.to_dict("records"):
        row = {"experiment": t["experiment"], "loss": t["loss"], "role": t["role"],
               "with_mse": bool(t["with_mse"]), "w": _num(t["w"]), "value": _num(t["value"]),
               "test_value": _num(t.get("test_value")), "status": STATUS.get(t["state"], t["state"]),
               "epochs_trained": _num(t["epochs"]), "candidate": t.get("candidate") or None,
               "seed": _seed(t.get("seed")),  # same-seed runs pair up (stats.runs.by_seed)
               "round": _seed(t.get("round"))}  # a race's round: stats.race replays them
        row.update({k: _num(v) for k, v in t.items()  # a joint loss's w1, w2, ...
                    if k[:1] == "w" and k[1:].isdigit() and _num(v) is not None})
        row.update({k: _num(t[k]) for k in objectives.OBJECTIVES if k in t})  # what --constraint bounds
        row.update({k: _num(t.get(k)) for k in HALF_KEYS})  # the noise budget's (stats.noise)

        rows.append(row)
    return rows


def epochs_of(trials: pd.DataFrame) -> int:
    """The epochs a full-length run trains: the trials' planned epochs."""
    planned = trials["epochs_planned"].max() if len(trials) else math.nan
    return int(planned) if np.isfinite(planned) else 0


def _settings(d: Path) -> dict:
    """A search's search.json, {} where it is missing or unreadable."""
    try:
        saved = json.loads((d / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def saved_bounds(search_dirs: list[Path]) -> dict[str, tuple[float, float]]:
    """Each loss's w bounds as the search saved them in search.json (`bounds`); {} for a search
    from before they were saved."""
    out: dict[str, tuple[float, float]] = {}
    for d in search_dirs:
        for loss, (low, high) in (_settings(d).get("bounds") or {}).items():
            old = out.get(loss, (math.inf, -math.inf))
            out[loss] = (min(old[0], float(low)), max(old[1], float(high)))
    return out


def saved_min_effect(search_dirs: list[Path]) -> float:
    """The equivalence margin the search judged with (search.json's `min_effect`, --min-effect);
    the default for a search from before it was saved. Searches analysed together that differ:
    the smallest, so that "equivalent" holds for each of them."""
    saved = [float(_settings(d).get("min_effect") or DEFAULT_MIN_EFFECT) for d in search_dirs]
    return min(saved, default=DEFAULT_MIN_EFFECT)


def saved_constraint(search_dirs: list[Path]) -> constraints.Constraint | None:
    """The distortion budget the search ran under (search.json's `constraint`, --constraint),
    None without one. Searches analysed together under different budgets: refused."""
    saved = {_settings(d).get("constraint") for d in search_dirs} - {None}
    if len(saved) > 1:
        raise UserError(f"the searches ran under different --constraint budgets "
                        f"({', '.join(sorted(saved))}); report them one at a time")
    return constraints.parse(saved.pop()) if saved else None


def saved_trade_off(search_dirs: list[Path]) -> str | None:
    """The second objective the search estimated a front against (search.json's `trade_off`,
    --objective twice), None for one objective. Searches analysed together that differ: refused."""
    saved = {_settings(d).get("trade_off") for d in search_dirs} - {None}
    if len(saved) > 1:
        raise UserError(f"the searches estimated fronts against different objectives "
                        f"({', '.join(sorted(saved))}); report them one at a time")
    return saved.pop() if saved else None


def saved_race(search_dirs: list[Path], min_effect: float) -> RaceSettings | None:
    """The sequential confirmation's settings (search.json's `confirm_budget` and
    `race_baseline_runs`), None without one. Searches analysed together each ran their own
    race: the report restates one."""
    races = {(int(s.get("confirm_budget") or 0), int(s.get("race_baseline_runs") or 1))
             for s in map(_settings, search_dirs)} - {(0, 1)}
    if len(races) > 1:
        shown = ", ".join(f"{b} ({r} baseline runs a round)" for b, r in sorted(races))
        raise UserError(f"the searches ran sequential confirmations with different budgets "
                        f"({shown}); report them one at a time")
    if not races:
        return None
    budget, baseline_runs = races.pop()
    return RaceSettings(budget, min_effect, baseline_runs=baseline_runs) if budget else None


def bounds_for(saved: dict, loss: str, rows: list[dict]) -> tuple[float, float]:
    """(low, high) of every weight: what the search saved, else the default space's; widened
    to every weight that ran (an older or edited space)."""
    low, high = saved.get(loss, vocab.DEFAULT_W_BOUNDS)
    ran = [v for r in rows if r["loss"] == loss
           for v in (r.get("w"), *weights_of(r)) if v is not None and v > 0]
    return (min([low, *ran]), max([high, *ran]))


# --- the report's objects from the answer ------------------------------------------------------

def curve_of(loss: str, a: dict, fit: SurrogateFit | None, rows: list[dict], epochs: int,
             bounds: tuple[float, float]) -> Curve:
    s = a["surrogate"]
    mine = [r for r in rows if r.get("experiment") == loss and r.get("role") in (PAPER, SEARCH)
            and r["with_mse"] and r.get("w") is not None]
    fitted = search_stage(mine, loss, epochs)
    note = "" if fit is not None else f"no curve: {s.get('note')}"
    return Curve(loss, fit, bounds, epochs, len(fitted), len(mine) - len(fitted), note)


def interval(c: dict) -> Interval | None:
    if c.get("verdict") is None:
        return None
    n = c["n_candidate"] + c["n_reference"]
    return Interval(c["diff"], c["low"], c["high"], c["level"], c["method"], n)


def pairing(c: dict | None) -> str:
    """How the answer made a comparison's interval (`stats.answer.pairing_text`), "" for none."""
    return pairing_text(c) if c and c.get("verdict") is not None else ""


def said(c: dict | None) -> tuple[Interval | None, str]:
    """(interval, verdict or why none) of one of the answer's comparisons."""
    if c is None:
        return None, ""
    if c.get("verdict") is None:
        return None, c.get("note") if "n_candidate" not in c else \
            f"{TOO_FEW} ({c['n_candidate']} vs {c['n_reference']})"
    return interval(c), c["verdict"]


def _confirmed(rows: list[dict], loss: str) -> dict[str, dict]:
    """{candidate names: point} as the confirmation stage ran them (its rows' `candidate`)."""
    out = {}
    for r in rows:
        if r.get("role") == vocab.CONFIRM and r.get("loss") == loss and r.get("candidate"):
            with_mse, w = point_of(r)
            out.setdefault(str(r["candidate"]), {"with_mse": with_mse, "w": w})
    return out


def comparisons_of(loss: str, a: dict, rows: list[dict], epochs: int) -> list[Comparison]:
    """The verdict rows of one loss: each (merged) candidate's confirmation runs against the
    baseline, the recommended w's against the best paper point (the answer's comparisons)."""
    comps = a["comparisons"]
    named = _confirmed(rows, loss)
    ran = {n for names in named for n in names.split("+")}
    named.update(merge_candidates({n: p for n, p in a["candidates"].items() if n not in ran}))
    paper = named.get(next((n for n in named if vocab.BEST_PAPER in n.split("+")), ""))
    out = []
    for names, point in named.items():
        first = names.split("+")[0]
        values = confirm_values(rows, loss, first, epochs)
        c = Comparison(loss, point_name(point["with_mse"], point.get("w")),
                       ", ".join(REASONS[n] for n in names.split("+")), len(values),
                       mean_interval(values) if len(values) >= 2 else None, values)
        if values:
            base = comps.get(f"{first}_vs_baseline")
            c.vs_baseline, c.verdict_baseline = said(base)
            c.pairing = pairing(base)
            if c.vs_baseline is not None:
                c.said_baseline, c.percent = verdict_text(base), percent_interval(base)
                c.largest_gain, c.min_effect = base.get("largest_gain"), base.get("min_effect")
                c.round, c.dropped_by = base.get("round"), base.get("dropped_by")
            if base and base.get("budget"):
                c.budget, c.said_budget = base["budget"], budget_text(base["budget"])
        else:
            c.verdict_baseline = "no confirmation runs (--confirm-seeds N re-runs the candidates)"
        if vocab.RECOMMENDED in names.split("+") and vocab.BEST_PAPER not in names.split("+") and paper:
            c.paper_config = point_name(paper["with_mse"], paper.get("w"))
            c.vs_paper, c.verdict_paper = said(comps.get(f"{vocab.RECOMMENDED}_vs_{vocab.BEST_PAPER}"))
            c.pairing_paper = pairing(comps.get(f"{vocab.RECOMMENDED}_vs_{vocab.BEST_PAPER}"))
        out.append(c)
    return out


def analyse_answer(a) -> None:
    """The search's answer recomputed from the trials (`a`: tables.Analysis): `a.answer`,
    `a.fits`, the curves, the verdict rows, the baseline's noise."""
    rows = rows_of(a.trials)
    epochs = epochs_of(a.trials)
    searches = [Path(s) for s in dict.fromkeys(a.trials["search"])]
    saved = saved_bounds(searches)
    losses = a.losses + a.joint_losses
    bounds = {loss: bounds_for(saved, loss, rows) for loss in losses}
    a.rows, a.epochs, a.fits = rows, epochs, {}
    margin = saved_min_effect(searches)
    a.answer = search_answer(rows, losses, epochs=epochs, bounds=bounds,
                             lower_is_better=a.lower_is_better,
                             n_per_config=max(2, a.replicates), fits=a.fits,
                             min_effect=margin, race=saved_race(searches, margin),
                             constraint=saved_constraint(searches), front=_front(a, searches))
    values = baseline_values(rows, epochs)
    a.noise = run_noise(values) if len(values) >= 2 else None
    for loss in a.losses:
        ans = a.answer["losses"][loss]
        a.curves[loss] = curve_of(loss, ans, a.fits.get(loss), rows, epochs, bounds[loss])
        a.comparisons += comparisons_of(loss, ans, rows, epochs)


def _front(a, searches: list[Path]) -> tuple[str, str] | None:
    """(objective, trade-off) of a two-objective search; None (no front section) where the
    report's --objective is the trade-off itself."""
    trade_off = saved_trade_off(searches)
    return (a.objective, trade_off) if trade_off and trade_off != a.objective else None


def full_length(trials: pd.DataFrame) -> pd.Series:
    """Which trials are full-length runs (`stats.runs.is_full_length` on their rows)."""
    epochs = epochs_of(trials)
    return pd.Series([is_full_length(r, epochs) for r in rows_of(trials)], index=trials.index, dtype=bool)


def full_length_runs(trials: pd.DataFrame, loss: str) -> pd.DataFrame:
    """The with-MSE full-length runs of a loss (any role), as the figures show them."""
    t = trials[(trials["loss"] == loss) & trials["with_mse"] & trials["w"].notna()]
    return t[full_length(t)] if len(t) else t


def replicates_per_config(groups: pd.DataFrame, trials: pd.DataFrame) -> int:
    """The runs per config the verdicts rest on: with a confirmation stage, the median number
    of confirmation runs per candidate (as the search's noise line); else the median number
    of runs of the with-MSE configs."""
    confirm = trials[(trials["role"] == vocab.CONFIRM) & (trials["loss"] != "mse")]
    if len(confirm):
        return int(np.median(confirm.groupby(["loss", "with_mse", confirm["w"].fillna(-1)]).size()))
    g = groups[(groups["loss"] != "mse") & groups["with_mse"]]
    return int(np.median(g["n"])) if len(g) else 0


def comparisons_frame(rows: list[Comparison]) -> pd.DataFrame:
    """The verdict table as data (verdicts.csv)."""
    def iv(i: Interval | None, part: str) -> float:
        return getattr(i, part) if i is not None else math.nan

    return pd.DataFrame([{
        "loss": c.loss, "config": c.config, "why": c.why, "n": c.n,
        "mean": iv(c.mean, "estimate") if c.mean else (c.values[0] if c.values else math.nan),
        "mean_low": iv(c.mean, "low"), "mean_high": iv(c.mean, "high"),
        "vs_baseline": iv(c.vs_baseline, "estimate"), "vs_baseline_low": iv(c.vs_baseline, "low"),
        "vs_baseline_high": iv(c.vs_baseline, "high"), "verdict_baseline": c.verdict_baseline,
        "largest_gain_pct": math.nan if c.largest_gain is None else c.largest_gain,
        "min_effect_pct": math.nan if c.min_effect is None else c.min_effect,
        "level": iv(c.vs_baseline, "level"), "round": math.nan if c.round is None else c.round,
        "dropped_by": c.dropped_by or "",
        **_budget_columns(c.budget),
        "paper_config": c.paper_config, "vs_paper": iv(c.vs_paper, "estimate"),
        "vs_paper_low": iv(c.vs_paper, "low"), "vs_paper_high": iv(c.vs_paper, "high"),
        "verdict_paper": c.verdict_paper, "pairing": c.pairing, "pairing_paper": c.pairing_paper,
        "method": (c.vs_baseline or c.vs_paper).method if (c.vs_baseline or c.vs_paper) else "",
    } for c in rows])


def _budget_columns(b: dict | None) -> dict:
    """verdicts.csv's budget columns: the budget verdict and its interval (metric units)."""
    def n(k: str) -> float:
        return math.nan if not b or b.get(k) is None else float(b[k])

    return {"budget": b["constraint"] if b else "", "budget_verdict": (b or {}).get("verdict") or "",
            "budget_diff": n("diff"), "budget_low": n("low"), "budget_high": n("high"),
            "budget_level": n("level")}


def curves_frame(curves: dict[str, Curve]) -> pd.DataFrame:
    """The posterior curves on their grids (curves.csv), to redraw the figures elsewhere."""
    parts = [pd.DataFrame({"loss": loss, "log10_w": c.fit.log10_w, "w": 10 ** c.fit.log10_w,
                           "mean": c.fit.mean, "low": c.fit.low, "high": c.fit.high,
                           "p_min": c.fit.p_min})
             for loss, c in curves.items() if c.fit is not None]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["loss", "log10_w", "w", "mean", "low", "high", "p_min"])
