"""The answer of a search as estimates (issue 12): per loss the surrogate's curve of the
objective over log w and its recommended w, the verdicts against the MSE baseline and the
best paper point from replicate runs, and the run-to-run noise with the effect it hides.

Everything statistical is `tune_vqvae.estimates` and `tune_vqvae.surrogate`; this module
only picks the runs each one gets:

- The curve is refitted here from the full-length runs (so experiments that stored no fit
  get one): early-stopped and failed trials never enter it (their value is at another
  fidelity, or missing).
- A comparison needs at least 2 runs of each config: with fewer, the report says so
  instead of printing a bare difference (one run's spread, ~3.5%, exceeds the effects).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tune_vqvae.stats.answer import difference as _difference
from tune_vqvae.stats.answer import fit_curve as fit_in_metric_units
from tune_vqvae.stats.intervals import Interval, Noise, mean_interval, run_noise
from tune_vqvae.stats.surrogate import MIN_OBSERVATIONS, SurrogateFit
from tune_vqvae.vocab import PAPER, SEARCH, SETTINGS_FILE, SPACES_DIR, objective_sign, point_name

from .load import COMPLETED, CONFIRM

SEARCH_STAGE = (PAPER, SEARCH)


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
    verdict_baseline: str = ""
    vs_paper: Interval | None = None
    verdict_paper: str = ""
    paper_config: str = ""  # the best paper point compared with


# --- the curve ---------------------------------------------------------------------------

def _space_file(search_dir: Path, loss: str) -> Path:
    """The search space file of a loss: search.json's `space`, else search_spaces/<loss>.yaml."""
    settings = {}
    try:
        settings = json.loads((search_dir / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        pass
    space = settings.get("space") if isinstance(settings, dict) else None
    return Path(space) if space else SPACES_DIR / f"{loss}.yaml"


def space_bounds(search_dirs: list[Path], loss: str, observed: np.ndarray) -> tuple[float, float]:
    """(low, high) of w: the search space's, widened to every w that ran (an older or edited
    space file); the observed range widened by a factor 2 when no space file is readable."""
    low, high = math.inf, -math.inf
    for d in search_dirs:
        try:
            w = yaml.safe_load(_space_file(d, loss).read_text())["w"]
            low, high = min(low, float(w["low"])), max(high, float(w["high"]))
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
            continue
    if not math.isfinite(low):
        low, high = observed.min() / 2, observed.max() * 2
    return min(low, observed.min()), max(high, observed.max())


def full_length_runs(trials: pd.DataFrame, loss: str) -> pd.DataFrame:
    """The with-MSE runs of a loss that trained all epochs and have a value: the surrogate's
    data. A stopped trial is never one, whatever its value."""
    t = trials[(trials["loss"] == loss) & trials["with_mse"] & trials["w"].notna()]
    epochs = t["epochs_planned"].max()
    full = (t["state"] == COMPLETED) & ~t["stopped"] & (t["epochs"] == epochs) & t["value"].notna()
    return t[full & np.isfinite(t["value"])]


def search_stage_runs(trials: pd.DataFrame, loss: str) -> pd.DataFrame:
    """The full-length runs the surrogate is fitted on: the search stage's (paper points and
    searched w), as the search fits it (tune_vqvae.answer.search_stage); the confirmation
    and seed re-runs judge the candidates instead."""
    runs = full_length_runs(trials, loss)
    return runs[runs["role"].isin(SEARCH_STAGE)]


def fit_curve(trials: pd.DataFrame, loss: str, objective: str, search_dirs: list[Path]) -> Curve:
    """Refit `surrogate.fit_objective_curve` on a loss's full-length search-stage runs."""
    mine = trials[(trials["loss"] == loss) & trials["with_mse"] & trials["w"].notna()
                  & trials["role"].isin(SEARCH_STAGE)]
    runs = search_stage_runs(trials, loss)
    left_out = len(mine) - len(runs)
    epochs = float(mine["epochs_planned"].max()) if len(mine) else math.nan
    if len(runs) < MIN_OBSERVATIONS:
        return Curve(loss, None, (math.nan, math.nan), epochs, len(runs), left_out,
                     f"no curve: {len(runs)} full-length run(s) with MSE, the fit needs "
                     f"{MIN_OBSERVATIONS}")
    w = runs["w"].to_numpy(float)
    bounds = space_bounds(search_dirs, loss, w)
    try:
        fit = fit_in_metric_units(w, runs["value"].to_numpy(float), runs["epochs"].to_numpy(),
                                  epochs=epochs, bounds=bounds,
                                  lower_is_better=objective_sign(objective) == 1)
    except ValueError as e:  # the surrogate refuses (say, non-finite values): the report goes on
        return Curve(loss, None, bounds, epochs, len(runs), left_out, f"no curve: {e}")
    return Curve(loss, fit, bounds, epochs, len(runs), left_out)


# --- replicates and comparisons ------------------------------------------------------------

def config_values(trials: pd.DataFrame, loss: str, with_mse: bool, w: float | None,
                  confirmed_only: bool = False) -> np.ndarray:
    """Objective of every full-length run of one config (its replicates, any role; with
    `confirmed_only`, its confirmation runs only)."""
    t = trials[(trials["loss"] == loss) & (trials["state"] == COMPLETED) & ~trials["stopped"]
               & trials["value"].notna() & (trials["with_mse"] == with_mse)]
    if confirmed_only:
        t = t[t["role"] == CONFIRM]
    if with_mse and loss != "mse":
        t = t[np.isclose(t["w"].to_numpy(float), w, rtol=1e-6)]
    return t["value"].to_numpy(float)


def mean_or_none(values: np.ndarray) -> Interval | None:
    return mean_interval(values) if len(values) >= 2 else None


def difference(candidate: np.ndarray, reference: np.ndarray, higher_is_better: bool
               ) -> tuple[Interval | None, str]:
    """(candidate - reference interval, verdict): the search's own rule (tune_vqvae.answer)."""
    return _difference(candidate, reference, lower_is_better=not higher_is_better)


def noise_of(baseline: np.ndarray) -> Noise | None:
    return run_noise(baseline) if len(baseline) >= 2 else None


# What the search calls its confirmation candidates (a trial's `candidate`, names joined by
# "+"), and how the report says them.
REASONS = {"recommended": "recommended w", "best_paper": "best paper point",
           "best_observed": "best observed"}


def _key(with_mse, w) -> tuple[bool, float | None]:
    """A config's key: (with_mse, w to 6 significant digits; None without MSE)."""
    with_mse = bool(with_mse)
    return with_mse, float(f"{float(w):.6g}") if with_mse else None


def _best(frame: pd.DataFrame, higher_is_better: bool):
    return frame["mean"].idxmax() if higher_is_better else frame["mean"].idxmin()


def _named(runs: pd.DataFrame) -> dict[str, tuple]:
    """reason -> config, as the search's confirmation stage named its candidates."""
    out: dict[str, tuple] = {}
    for _, t in runs[runs["candidate"].astype(str) != ""].iterrows():
        for name in str(t["candidate"]).split("+"):
            if name in REASONS:
                out.setdefault(REASONS[name], _key(t["with_mse"], t["w"]))
    return out


def _derived(groups: pd.DataFrame, runs: pd.DataFrame, curve: Curve, higher_is_better: bool
             ) -> dict[str, tuple]:
    """reason -> config, for searches that named none: the config nearest the recommended w
    (among the confirmation stage's configs, when it ran), the best paper point and the best
    observed config by mean (the winner's curse applies to both)."""
    out: dict[str, tuple] = {}
    if groups.empty:
        return out
    mse = groups[groups["with_mse"]]
    if curve.fit is not None and len(mse):
        confirmed = {_key(True, w) for w in runs.loc[(runs["role"] == CONFIRM) & runs["with_mse"], "w"]}
        pool = mse[[_key(True, w) in confirmed for w in mse["w"]]] if confirmed else mse
        pool = pool if len(pool) else mse
        distance = (np.log10(pool["w"].astype(float)) - math.log10(curve.fit.recommended_w)).abs()
        out[REASONS["recommended"]] = _key(True, pool.loc[distance.idxmin(), "w"])
    paper = groups[groups["paper_grid"]]
    if len(paper):
        r = paper.loc[_best(paper, higher_is_better)]
        out[REASONS["best_paper"]] = _key(r["with_mse"], r["w"])
    r = groups.loc[_best(groups, higher_is_better)]
    out[REASONS["best_observed"]] = _key(r["with_mse"], r["w"])
    return out


def candidates(groups: pd.DataFrame, runs: pd.DataFrame, curve: Curve, higher_is_better: bool
               ) -> dict[tuple, list[str]]:
    """The configs a loss is judged by, config key -> reasons; the search's own naming of its
    confirmation candidates wins over the derived choice."""
    reasons = {**_derived(groups, runs, curve, higher_is_better), **_named(runs)}
    picks: dict[tuple, list[str]] = {}
    for reason in REASONS.values():
        if reason in reasons:
            picks.setdefault(reasons[reason], []).append(reason)
    return picks


def compare_loss(trials: pd.DataFrame, groups: pd.DataFrame, loss: str, curve: Curve,
                 baseline: np.ndarray, higher_is_better: bool) -> list[Comparison]:
    """The verdict rows of one loss: each candidate against the baseline and the best paper
    point (the best paper point by mean, itself compared with the baseline only)."""
    mine = groups[groups["loss"] == loss]
    picks = candidates(mine, trials[trials["loss"] == loss], curve, higher_is_better)
    # A search with a confirmation stage is judged as the search judged it (tune_vqvae.answer):
    # by the fresh-seed runs only, never by the search-stage runs that selected the candidate.
    confirmed = bool(((trials["loss"] == loss) & (trials["role"] == CONFIRM)).any())
    paper_key = next((k for k, why in picks.items() if "best paper point" in why), None)
    paper = config_values(trials, loss, *paper_key, confirmed) if paper_key else np.array([])
    rows = []
    for (with_mse, w), why in picks.items():
        values = config_values(trials, loss, with_mse, w, confirmed)
        c = Comparison(loss, point_name(with_mse, w), ", ".join(why), len(values),
                       mean_or_none(values), list(values))
        c.vs_baseline, c.verdict_baseline = difference(values, baseline, higher_is_better) \
            if len(baseline) else (None, "no MSE baseline run")
        if paper_key is not None and (with_mse, w) != paper_key:
            c.paper_config = point_name(*paper_key)
            c.vs_paper, c.verdict_paper = difference(values, paper, higher_is_better)
        rows.append(c)
    return rows


def replicates_per_config(groups: pd.DataFrame, trials: pd.DataFrame) -> int:
    """The runs per config the verdicts rest on: with a confirmation stage, the median number
    of confirmation runs per candidate (as the search's noise line); else the median number
    of runs of the with-MSE configs."""
    confirm = trials[(trials["role"] == CONFIRM) & (trials["loss"] != "mse")]
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
        "paper_config": c.paper_config, "vs_paper": iv(c.vs_paper, "estimate"),
        "vs_paper_low": iv(c.vs_paper, "low"), "vs_paper_high": iv(c.vs_paper, "high"),
        "verdict_paper": c.verdict_paper,
        "method": (c.vs_baseline or c.vs_paper).method if (c.vs_baseline or c.vs_paper) else "",
    } for c in rows])


def curves_frame(curves: dict[str, Curve]) -> pd.DataFrame:
    """The posterior curves on their grids (curves.csv), to redraw the figures elsewhere."""
    parts = [pd.DataFrame({"loss": loss, "log10_w": c.fit.log10_w, "w": 10 ** c.fit.log10_w,
                           "mean": c.fit.mean, "low": c.fit.low, "high": c.fit.high,
                           "p_min": c.fit.p_min})
             for loss, c in curves.items() if c.fit is not None]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["loss", "log10_w", "w", "mean", "low", "high", "p_min"])
