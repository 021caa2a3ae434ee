"""Which runs count: the one place that decides which results rows enter the answer.

Rows are plain dicts, as results.csv holds them (the search builds them from its ResultGrids,
the report from the trial directories): `experiment`, `loss`, `role`, `with_mse`, `w` (a
joint loss: `w1`, `w2`, ...), `value` (the objective metric itself), `test_value`, `status`,
`epochs_trained`, `candidate`.

- A run is *full-length* when it trained all epochs and has a finite value: an early-stopped
  run's value is the objective at another fidelity, a diverged or failed run has none.
- The *search stage* of a loss (paper points and searched weights) fits the surrogate and
  names the candidates; the *confirmation* runs (fresh seeds) judge them, never the runs that
  selected them (the winner's curse). The MSE baseline also runs the confirmation seeds, so
  a candidate's run and the baseline's of one seed are a pair (`by_seed`, `stats.paired`).
- Two rows are the *same point* when with_mse agrees and every weight agrees to `REL_TOL`.

    >>> row = {"status": "COMPLETED", "epochs_trained": 6, "value": 70.0}
    >>> is_full_length(row, 6), is_full_length({**row, "epochs_trained": 2}, 6)
    (True, False)
    >>> point_of({"with_mse": True, "w": 0.5}), point_of({"with_mse": True, "w1": 1, "w2": 2})
    ((True, 0.5), (True, (1.0, 2.0)))
    >>> candidate_names({"candidate": "best_paper+best_observed"})
    ['best_paper', 'best_observed']
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..vocab import (
    BASELINE,
    BEST_OBSERVED,
    BEST_PAPER,
    COMPLETED,
    CONFIRM,
    PAPER,
    RECOMMENDED,
    SEARCH,
    weight_params,
)

REL_TOL = 1e-6  # two weights closer than this are the same point (results.csv keeps ~15 digits)


def finite(v) -> bool:
    return v is not None and not isinstance(v, str) and math.isfinite(float(v))


def is_full_length(row: dict, epochs: int) -> bool:
    """A run that trained all epochs and has a finite value (stopped, diverged, failed: no)."""
    trained = row.get("epochs_trained", row.get("epochs"))
    return (row.get("status") == COMPLETED and finite(trained) and int(trained) >= epochs
            and finite(row.get("value")))


def weights_of(row: dict) -> tuple[float, ...]:
    """A joint loss's weights w1, w2, ... of a point or row; () for a single loss."""
    keys = sorted(k for k in row if k[:1] == "w" and k[1:].isdigit() and finite(row[k]))
    return tuple(float(row[k]) for k in keys)


def point_of(row: dict) -> tuple[bool, float | tuple | None]:
    """The point a row ran: (True, w), (False, None) without MSE, (True, (w1, w2)) jointly."""
    if not bool(row.get("with_mse", True)):
        return False, None
    weights = weights_of(row)
    if weights:
        return True, weights
    return True, float(row["w"]) if finite(row.get("w")) else None


def same_point(a: dict, b: dict) -> bool:
    (ma, wa), (mb, wb) = point_of(a), point_of(b)
    if ma != mb:
        return False
    wa, wb = np.atleast_1d(np.asarray(wa, float)), np.atleast_1d(np.asarray(wb, float))
    return wa.shape == wb.shape and bool(np.all(np.isclose(wa, wb, rtol=REL_TOL, atol=0)
                                                | (np.isnan(wa) & np.isnan(wb))))


def point_dict(loss: str, point: tuple) -> dict:
    """A candidate as results.json states it: {"with_mse": True, "w": 0.5}, {"with_mse":
    False}, or {"with_mse": True, "w1": .., "w2": ..}."""
    with_mse, w = point
    if not with_mse:
        return {"with_mse": False}
    if isinstance(w, tuple):
        return {"with_mse": True, **weight_params(loss, w)}
    return {"with_mse": True, "w": float(w)}


def candidate_names(row: dict) -> list[str]:
    """The candidate names of a confirmation row ("best_paper+best_observed": both)."""
    c = row.get("candidate")
    return str(c).split("+") if isinstance(c, str) and c else []


def _order(row: dict) -> tuple:
    with_mse, w = point_of(row)
    return (not with_mse, tuple(np.atleast_1d(np.asarray(w if w is not None else 0.0, float))),
            float(row["value"]))


def search_stage(rows: Iterable[dict], loss: str, epochs: int) -> list[dict]:
    """The loss's full-length runs of the search itself (paper points and searched w), in
    one order whoever lists them (the search's rows, the report's trials): the fits see the
    same data in the same order."""
    return sorted((r for r in rows if r.get("experiment") == loss and r.get("role") in (PAPER, SEARCH)
                   and is_full_length(r, epochs)), key=_order)


def baseline_runs(rows: Iterable[dict], epochs: int, key: str = "value") -> list[dict]:
    """The MSE baseline's full-length rows with a finite `key`: its own seeds and, from the
    confirmation stage on, the candidates' seeds (baseline-confirm)."""
    return [r for r in rows
            if r.get("role") == BASELINE and is_full_length(r, epochs) and finite(r.get(key))]


def baseline_values(rows: Iterable[dict], epochs: int, key: str = "value") -> list[float]:
    """The MSE baseline's full-length runs: `key` "value" (the objective) or "test_value"."""
    return [float(r[key]) for r in baseline_runs(rows, epochs, key)]


def by_seed(runs: list[dict], key: str = "value") -> dict | list[float]:
    """{seed: value} of runs each with a seed of its own (same-seed runs of two configs can
    be paired), else their values (older rows without seeds: unpaired).

    >>> by_seed([{"seed": 1, "value": 2.0}, {"seed": 2, "value": 3.0}])
    {1: 2.0, 2: 3.0}
    >>> by_seed([{"seed": None, "value": 2.0}, {"seed": None, "value": 3.0}])
    [2.0, 3.0]
    """
    seeds = [r.get("seed") for r in runs]
    if all(finite(s) for s in seeds) and len({int(s) for s in seeds}) == len(seeds):
        return {int(r["seed"]): float(r[key]) for r in runs}
    return [float(r[key]) for r in runs]


def confirm_rows(rows: Iterable[dict], loss: str, candidate: str) -> list[dict]:
    """The confirmation runs of `candidate` of a loss, whatever their state."""
    return [r for r in rows
            if r.get("role") == CONFIRM and r.get("loss") == loss and candidate in candidate_names(r)]


def confirm_runs(rows: Iterable[dict], loss: str, candidate: str, epochs: int,
                 key: str = "value") -> list[dict]:
    """The full-length confirmation rows of `candidate` with a finite `key`."""
    return [r for r in confirm_rows(rows, loss, candidate)
            if is_full_length(r, epochs) and finite(r.get(key))]


def confirm_values(rows: Iterable[dict], loss: str, candidate: str, epochs: int,
                   key: str = "value") -> list[float]:
    """Values of the full-length confirmation runs of `candidate`."""
    return [float(r[key]) for r in confirm_runs(rows, loss, candidate, epochs, key)]


def _better(lower_is_better: bool):
    return min if lower_is_better else max


def best_paper_point(runs: list[dict], loss: str, lower_is_better: bool) -> dict | None:
    """The paper point (a joint loss: reference point) with the best mean over its
    full-length runs (replicates pooled), with that mean and its number of runs."""
    groups: dict[tuple, list[float]] = {}
    for r in runs:
        if r.get("role") == PAPER:
            key = next((k for k in groups if same_point(_as_row(k), r)), point_of(r))
            groups.setdefault(key, []).append(float(r["value"]))
    if not groups:
        return None
    key = _better(lower_is_better)(groups, key=lambda k: np.mean(groups[k]))
    return {**point_dict(loss, key), "mean": float(np.mean(groups[key])), "n": len(groups[key])}


def _as_row(point: tuple) -> dict:
    with_mse, w = point
    if isinstance(w, tuple):
        return {"with_mse": with_mse, **{f"w{i + 1}": v for i, v in enumerate(w)}}
    return {"with_mse": with_mse, "w": w}


def best_observed(runs: list[dict], loss: str, lower_is_better: bool) -> dict | None:
    """The point of the best single full-length run (what the search used to report)."""
    if not runs:
        return None
    return point_dict(loss, point_of(_better(lower_is_better)(runs, key=lambda r: float(r["value"]))))


def candidates(runs: list[dict], loss: str, recommended: dict | None,
               lower_is_better: bool) -> dict[str, dict]:
    """{candidate name: point} of the confirmation stage: the surrogate's recommendation
    (`recommended`, None without a fit), the best paper point, the best observation."""
    out = {}
    if recommended is not None:
        out[RECOMMENDED] = recommended
    paper = best_paper_point(runs, loss, lower_is_better)
    if paper is not None:
        out[BEST_PAPER] = {k: v for k, v in paper.items() if k not in ("mean", "n")}
    observed = best_observed(runs, loss, lower_is_better)
    if observed is not None:
        out[BEST_OBSERVED] = observed
    return out


def merge_candidates(named: dict[str, dict]) -> dict[str, dict]:
    """One run list per distinct point: {"best_paper+best_observed": point, ...}."""
    merged: dict[str, dict] = {}
    for name, point in named.items():
        for key, other in list(merged.items()):
            if same_point(point, other):
                merged[f"{key}+{name}"] = merged.pop(key)
                break
        else:
            merged[name] = point
    return merged

