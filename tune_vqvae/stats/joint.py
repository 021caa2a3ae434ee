"""The answer of a joint loss (`ssim+gmsd`: mse + w1 * ssim + w2 * gmsd, issue 13), from
results rows, as `stats.answer` gives it for one loss:

- `surrogate`: the GP of objective(log10 w1, log10 w2) (`surrogate.fit_objective_surface`)
  fitted on the loss's full-length runs of the search stage; the recommended pair (minimiser
  of the posterior mean) and the objective there with its 95% band;
- `candidates`: what the confirmation stage re-runs with fresh seeds: the recommended pair,
  the best reference point (the diagonal of the paper's weights the search ran first) and the
  best single observation, each `{"with_mse": True, "w1": .., "w2": ..}`;
- `comparisons`: from those fresh seeds, against the MSE baseline and the best reference
  point (`answer.comparisons`), and `recommended_vs_best_single`: the pair against the best
  confirmed candidate of its parts searched alone in the same search (`--loss ssim --loss gmsd
  --loss ssim+gmsd`). Without replicate runs on both sides it is not resolved.

Plain Python and numpy (no ray); torch only when the GP is fitted.
"""

from __future__ import annotations

import numpy as np

from ..vocab import (
    BEST_OBSERVED,
    BEST_PAPER,
    CANDIDATES,
    NOT_RESOLVED,
    RECOMMENDED,
    loss_parts,
    point_name,
    weight_params,
)
from .answer import compare, comparisons, in_metric_units, minimised
from .answer_text import _g, describe_comparison
from .equivalence import DEFAULT_MIN_EFFECT
from .runs import (
    best_paper_point,
    by_seed,
    candidates,
    confirm_rows,
    confirm_runs,
    confirm_values,
    search_stage,
    weights_of,
)
from .surrogate import fit_objective_surface

BEST_SINGLE = "best_single"  # the reference of the question "does the pair beat its parts?"
MIN_PAIRS = 4  # distinct (w1, w2) with full-length runs the surface needs


def fit_surface(runs: list[dict], loss: str, epochs: int, bounds: tuple[float, float],
                lower_is_better: bool, fits: dict | None = None) -> dict:
    """The 2-D GP fit on full-length runs, as plain JSON (metric units), or a note; the fit
    itself goes into `fits[loss]` when given (the report draws it)."""
    runs = [r for r in runs if len(weights_of(r)) == len(loss_parts(loss))]
    pairs = [weights_of(r) for r in runs]
    if len(set(pairs)) < MIN_PAIRS:
        return {"fitted": False, "n_observations": len(runs),
                "note": f"{len(set(pairs))} distinct (w1, w2) with full-length runs; the surface "
                        f"needs {MIN_PAIRS}"}
    y = minimised([r["value"] for r in runs], lower_is_better)
    try:
        fit = fit_objective_surface(pairs, y, [epochs] * len(y), epochs=epochs, bounds=bounds,
                                    log_objective=bool(np.all(y > 0)))
    except ValueError as e:  # the surrogate refuses: said, not fatal
        return {"fitted": False, "n_observations": len(runs), "note": str(e)}
    fit = in_metric_units(fit, lower_is_better)
    if fits is not None:
        fits[loss] = fit
    o = fit.objective
    return {
        "fitted": True,
        "n_observations": fit.n_observations,
        "bounds": list(bounds),
        "recommended": weight_params(loss, fit.recommended),
        # 95% of the minimiser's posterior, each weight's marginal
        "recommended_intervals": dict(zip(weight_params(loss, fit.recommended),
                                          ([i.low, i.high] for i in fit.weight_intervals))),
        "objective": {"estimate": o.estimate, "low": o.low, "high": o.high, "level": o.level,
                      "method": o.method, "n": o.n},
        "noise_std": fit.noise_std,
        "length_scales": list(fit.length_scales),
    }


def best_single(rows: list[dict], loss: str, epochs: int,
                lower_is_better: bool) -> tuple[str, list[float], dict]:
    """(name, values, {"loss": part, "candidate": name}) of the best confirmed candidate of the
    joint loss's parts searched alone in this search: the candidate with the best mean over
    >= 2 confirmation runs; ("", [], {}) when no part has such runs."""
    best: tuple[str, list[float], dict] = ("", [], {})
    for part in loss_parts(loss):
        for cand in CANDIDATES:
            values = confirm_values(rows, part, cand, epochs)
            if len(values) < 2:
                continue
            mean = minimised(np.mean(values), lower_is_better)
            if not best[1] or mean < minimised(np.mean(best[1]), lower_is_better):
                point = next(iter(confirm_rows(rows, part, cand)), {})
                name = f"{part} {point_name(point.get('with_mse', True), point.get('w'))}"
                best = (name, values, {"loss": part, "candidate": cand})
    return best


def vs_best_single(rows: list[dict], loss: str, epochs: int, lower_is_better: bool) -> dict:
    """The pair's confirmation runs (recommended, else best observed) against the best single
    loss's; `verdict` None and a note saying why when either side has fewer than 2 runs."""
    name, single, which = best_single(rows, loss, epochs, lower_is_better)
    pair, who = [], RECOMMENDED
    for who in (RECOMMENDED, BEST_OBSERVED):
        pair = confirm_values(rows, loss, who, epochs)
        if pair:
            break
    if which:  # confirmation runs on common seeds: paired where they pair up (answer.compare)
        c = compare(by_seed(confirm_runs(rows, loss, who, epochs)),
                    by_seed(confirm_runs(rows, which["loss"], which["candidate"], epochs)), lower_is_better)
    else:
        c = compare(pair, single, lower_is_better)
    c.update(reference=name, candidate=who, reference_runs=which)
    if c["verdict"] is None:
        parts = ", ".join(loss_parts(loss))
        flags = " ".join(f"--loss {p}" for p in (*loss_parts(loss), loss))
        c["note"] = f"{NOT_RESOLVED}: " + (
            f"no confirmation runs of {parts} alone (search them alongside: {flags})" if not single
            else f"{len(pair)} confirmation run(s) of the pair vs {len(single)} of {name}; each side needs 2")
    return c


def loss_answer(rows: list[dict], loss: str, *, epochs: int, bounds: tuple[float, float],
                lower_is_better: bool, fits: dict | None = None,
                min_effect: float = DEFAULT_MIN_EFFECT, raced: dict | None = None) -> dict:
    """A joint loss's entry of results.json's "answer" (see the module docstring); `raced`:
    its comparisons from the sequential race, if one ran (`stats.race`)."""
    runs = search_stage(rows, loss, epochs)
    surface = fit_surface(runs, loss, epochs, bounds, lower_is_better, fits)
    recommended = {"with_mse": True, **surface["recommended"]} if surface["fitted"] else None
    comps = dict(raced["comparisons"]) if raced else comparisons(rows, loss, epochs, lower_is_better,
                                                                  min_effect=min_effect)
    comps[f"{RECOMMENDED}_vs_{BEST_SINGLE}"] = vs_best_single(rows, loss, epochs, lower_is_better)
    return {
        "joint": True,
        "parts": list(loss_parts(loss)),
        "surrogate": surface,
        "candidates": candidates(runs, loss, recommended, lower_is_better),
        "best_paper_point": best_paper_point(runs, loss, lower_is_better),
        "full_length_runs": len(runs),
        "comparisons": comps,
    }


def _name(point: dict | None) -> str:
    if not point:
        return "-"
    return point_name(True, weights_of(point))


def format_loss(loss: str, a: dict, objective: str) -> list[str]:
    """Console lines of a joint loss's answer."""
    s, named = a["surrogate"], a["candidates"]
    if s.get("fitted"):
        o = s["objective"]
        ranges = ", ".join(f"{k} [{_g(lo)}, {_g(hi)}]" for k, (lo, hi) in s["recommended_intervals"].items())
        lines = [f"{loss}: recommended {_name(s['recommended'])} ({ranges}; surface of "
                 f"{s['n_observations']} full-length runs over (w1, w2); {objective} "
                 f"{_g(o['estimate'])} [{_g(o['low'])}, {_g(o['high'])}])"]
    else:
        lines = [f"{loss}: no surface ({s.get('note')})"]
    who = {c: f"{c.replace('_', ' ')} {_name(named.get(c))}" for c in CANDIDATES}
    shown = []
    for key, c in a["comparisons"].items():
        cand, _, ref = key.partition("_vs_")
        if c in shown or c.get("note", "").startswith("the recommended w is"):
            continue
        shown.append(c)
        if ref == BEST_SINGLE:
            text = f"  pair vs best single loss ({c.get('reference') or 'none'}): "
            lines.append(text + (c["note"] if c.get("verdict") is None else describe_comparison(
                c, who[c.get("candidate", RECOMMENDED)], c["reference"]).split(": ", 1)[1]))
            continue
        ref_name = "MSE baseline" if ref == "baseline" else f"best reference {_name(named.get(BEST_PAPER))}"
        lines.append("  " + describe_comparison(c, who[cand], ref_name))
    return lines
