"""The perception-distortion front of one loss (issue 24, `--objective A --objective B`): the
estimated front over log w, not the non-dominated single runs.

One surrogate per objective (`answer.fit_curve`: the GP over log10 w in the metric's own
units and direction, as the single-objective answer fits it) on the same full-length
search-stage runs, both on the same grid of log10 w over the search's bounds. The front is
the grid points, within the observed range of w (never an extrapolation, as the surrogate's
own recommendation), whose posterior means no other such point beats on both objectives
(each objective's direction from `tune_vqvae.objectives`, never a sign written here). Each
front point carries both objectives' pointwise 95% bands there. Beside it: the MSE
baseline's mean of each objective with its t interval, and the confirmed candidates' (fresh
seeds) means and intervals, which the report draws as error bars.

Why the posterior means and not the runs: with 3.5% run-to-run noise the non-dominated single
runs are mostly the lucky ones (the winner's curse on two axes at once); the means are what a
new run at that w is expected to score.

    >>> non_dominated([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]).tolist()   # a trade-off: all of it
    [True, True, True]
    >>> non_dominated([1.0, 2.0, 3.0], [1.0, 2.0, 0.5]).tolist()   # the middle one is beaten
    [True, False, True]
"""

from __future__ import annotations

import numpy as np

from .. import objectives
from ..vocab import CANDIDATES
from .answer import fit_curve, minimised
from .intervals import mean_interval
from .runs import baseline_values, confirm_runs, finite, search_stage
from .surrogate import observed

SHOWN = 5  # front points the console prints (evenly spread along it, both ends included)


def non_dominated(a, b) -> np.ndarray:
    """Which points (a[i], b[i]), both minimised, no other point dominates (at least as good
    on both, better on one)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    at_least = (a[None, :] <= a[:, None]) & (b[None, :] <= b[:, None])  # [i, j]: j at least as good as i
    better = (a[None, :] < a[:, None]) | (b[None, :] < b[:, None])
    return ~np.any(at_least & better, axis=1)


def _band(fit, i: int) -> dict:
    return {"estimate": float(fit.mean[i]), "low": float(fit.low[i]), "high": float(fit.high[i])}


def _mean(values: list[float]) -> dict | None:
    """The mean and its 95% t interval (None below 2 runs: no interval)."""
    if len(values) < 2:
        return None
    iv = mean_interval(values)
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high, "n": iv.n}


def key_of(name: str, objective: str) -> str:
    """A row's key holding objective `name`: the first objective is the row's "value"."""
    return "value" if name == objective else name


def estimate_front(w, first, second, *, names: tuple[str, str], epochs: int,
                   bounds: tuple[float, float]) -> dict:
    """The front from one entry per full-length run (w, the first and the second objective's
    values): both surrogates' curves on one grid, the non-dominated grid points within the
    observed w ("points": w and each objective's band there) and their range of w. The
    surrogate's checks apply (ValueError)."""
    lower = [objectives.get(n).lower_is_better for n in names]
    trained = [epochs] * len(w)
    fits = [fit_curve(w, v, trained, epochs=epochs, bounds=bounds, lower_is_better=lib)
            for v, lib in zip((first, second), lower)]
    grid = fits[0].log10_w
    inside = np.flatnonzero(observed(grid, w))
    keep = non_dominated(*(minimised(f.mean[inside], lib) for f, lib in zip(fits, lower)))
    on_front = inside[keep]
    points = [{"w": float(10 ** grid[i]), **{n: _band(f, i) for n, f in zip(names, fits)}} for i in on_front]
    return {
        "fitted": True, "objectives": list(names), "directions": [objectives.get(n).direction for n in names],
        "n_observations": len(w), "log10_w": grid.tolist(),
        "curves": {n: {"mean": f.mean.tolist(), "low": f.low.tolist(), "high": f.high.tolist()}
                   for n, f in zip(names, fits)},
        "points": points, "w_range": [points[0]["w"], points[-1]["w"]],
    }


def front_runs(rows, loss: str, epochs: int, trade_off: str) -> list[dict]:
    """The runs the surrogates of the front fit: the loss's full-length search-stage runs with
    MSE, a w, and both objectives finite (the first is the row's "value")."""
    return [r for r in search_stage(rows, loss, epochs) if r.get("with_mse", True) and finite(r.get("w"))
            and finite(r.get("value")) and finite(r.get(trade_off))]


def front_answer(rows, loss: str, *, epochs: int, bounds: tuple[float, float], objective: str,
                 trade_off: str) -> dict:
    """A single loss's answer["front"]: `estimate_front` on its search-stage runs with both
    objectives finite, the MSE baseline's point and the confirmed candidates' (fresh seeds),
    as JSON; or {"fitted": False, "note"} where it cannot be fitted."""
    names = (objective, trade_off)
    keys = [key_of(n, objective) for n in names]
    runs = front_runs(rows, loss, epochs, trade_off)
    out = {"fitted": False, "objectives": list(names), "n_observations": len(runs)}
    if len({float(r["w"]) for r in runs}) < 3:
        out["note"] = (f"{len({float(r['w']) for r in runs})} distinct w with full-length runs "
                       f"reporting both {objective} and {trade_off}; the surrogates need 3")
    else:
        try:
            out = estimate_front([float(r["w"]) for r in runs],
                                 *([float(r[k]) for r in runs] for k in keys),
                                 names=names, epochs=epochs, bounds=bounds)
        except ValueError as e:  # the surrogate refuses (a w outside the bounds): said, not fatal
            out["note"] = str(e)
    out["baseline"] = {n: _mean(baseline_values(rows, epochs, key=k)) for n, k in zip(names, keys)}
    out["confirmed"] = confirmed(rows, loss, epochs, names, keys)
    return out


def confirmed(rows, loss: str, epochs: int, names, keys) -> dict[str, dict]:
    """{candidate: {"w", and each objective's mean and interval}} of the candidates whose
    fresh-seed confirmation runs have both objectives (>= 2 runs)."""
    out = {}
    for cand in CANDIDATES:
        runs = [r for r in confirm_runs(rows, loss, cand, epochs) if all(finite(r.get(k)) for k in keys)]
        means = {n: _mean([float(r[k]) for r in runs]) for n, k in zip(names, keys)}
        if runs and finite(runs[0].get("w")) and all(means.values()):
            out[cand] = {"w": float(runs[0]["w"]), **means}
    return out


def shown_points(front: dict, n: int = SHOWN) -> list[dict]:
    """`n` of the front's points, evenly spread along it (both ends), for a short table."""
    points = front.get("points") or []
    if len(points) <= n:
        return points
    return [points[i] for i in sorted({round(k * (len(points) - 1) / (n - 1)) for k in range(n)})]


def _band_text(b: dict | None) -> str:
    return "-" if b is None else f"{b['estimate']:.4g} [{b['low']:.4g}, {b['high']:.4g}]"


def format_front(loss: str, front: dict) -> list[str]:
    """The console's front: its range of w and a short table of it, the MSE baseline's point."""
    a, b = front["objectives"]
    if not front.get("fitted"):
        return [f"{loss}: no front of {a} vs {b} ({front.get('note')})"]
    low, high = front["w_range"]
    lines = [f"{loss}: estimated front of {a} ({front['directions'][0]}) vs {b} ({front['directions'][1]}): "
             f"w {low:.3g} to {high:.3g}, {len(front['points'])} of {len(front['log10_w'])} grid points "
             f"(surrogates of {front['n_observations']} full-length runs; 95% bands)",
             f"  {'w':>8}  {a + ' [95%]':<28}{b + ' [95%]'}"]
    lines += [f"  {p['w']:>8.3g}  {_band_text(p[a]):<28}{_band_text(p[b])}" for p in shown_points(front)]
    base = front.get("baseline") or {}
    lines.append(f"  {'MSE':>8}  {_band_text(base.get(a)):<28}{_band_text(base.get(b))}  "
                 f"(baseline runs' mean)")
    for cand, c in (front.get("confirmed") or {}).items():
        lines.append(f"  {c['w']:>8.3g}  {_band_text(c[a]):<28}{_band_text(c[b])}  "
                     f"({cand.replace('_', ' ')}: {c[a]['n']} confirmation runs' mean)")
    return lines
