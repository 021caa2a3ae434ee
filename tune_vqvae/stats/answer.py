"""The answer of a search, as estimates: which w, and does it beat MSE and the paper's grid.

Computed from the rows of results.csv alone (plain dicts; no ray, no torch until the GP
is fitted), so the search, the benchmark (`python -m tune_vqvae.bench search`) and the
analysis state every number the same way and the report can recompute it from files.

Per loss:

- `surrogate`: the GP of objective(log10 w) (`stats.surrogate`) fitted on the loss's
  full-length with-MSE runs of the search stage (early-stopped, diverged and failed runs,
  and the confirmation runs, stay out); its posterior mean and 95% band on a grid, the
  recommended w (minimiser of the posterior mean) with an interval, and the objective there.
- `candidates`: what the confirmation stage re-runs with fresh seeds: the recommended w,
  the best paper point (best mean over its replicates) and the best single observation
  (what the search used to report).
- `comparisons`: from those fresh seeds, `candidate - reference` with a 95% interval and a
  verdict: paired over same-seed runs (the baseline runs the confirmation seeds too;
  `paired.compare_runs`, with the measured same-seed r), Welch (`intervals.diff_interval`)
  where runs do not pair (older searches). Against the MSE baseline's replicates the verdict
  is `equivalence.verdict` of the difference in % of the baseline mean with the margin
  `min_effect` (better / worse / equivalent / not resolved), with the largest gain the runs
  leave possible; against the best paper point's confirmation runs it stays
  better / indistinguishable / worse (`intervals.verdict`: no margin is set for it). The
  search-stage runs of a candidate never enter: they were selected (the winner's curse).

For the whole search, `baseline`: the MSE baseline's replicates, their mean interval, the
run-to-run noise and the smallest relative difference the confirmation can resolve, and the
noise budget (`stats.noise`: how much of that noise is the scoring of a finite evaluation set).

Signs: `value` is the objective metric itself (e.g. swd, or val_psnr); a difference is
candidate - reference in the metric's units; `percent` is it relative to the reference mean.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..vocab import BEST_PAPER, CANDIDATES, CONFIRM, RECOMMENDED
from . import equivalence
from .intervals import (
    Interval,
    detectable_effect,
    diff_interval,
    mean_interval,
    run_noise,
    seeds_needed,
    verdict,
)
from .noise import baseline_budget, budget_json
from .paired import Comparison, compare_runs, percent_of
from .runs import (  # noqa: F401  (is_full_length, merge_candidates: the answer's surface)
    baseline_runs,
    baseline_values,
    best_paper_point,
    by_seed,
    candidate_names,
    confirm_runs,
    confirm_values,
    finite,
    is_full_length,
    merge_candidates,
    search_stage,
)
from .runs import candidates as named_candidates
from .surrogate import SurrogateFit, fit_objective_curve

EFFECT = 0.02  # the relative difference the noise line asks about: "to resolve 2% ..."
BOOTSTRAP_FROM = 20  # runs per side from which a difference gets the bootstrap interval
TOO_FEW = "too few runs for an interval"


# --- the surrogate -----------------------------------------------------------------------


def _interval(iv: Interval) -> dict:
    return {
        "estimate": iv.estimate,
        "low": iv.low,
        "high": iv.high,
        "level": iv.level,
        "method": iv.method,
        "n": iv.n,
    }


def in_metric_units(fit, lower_is_better: bool):
    """A fit (`SurrogateFit` or `SurfaceFit`) of the minimised objective turned back into the
    metric's own sign: the GP minimises, so a higher-is-better metric is fitted negated and
    its mean, band and objective interval negated back (the band's ends swap)."""
    if lower_is_better:
        return fit
    o = fit.objective
    return dataclasses.replace(
        fit, mean=-fit.mean, low=-fit.high, high=-fit.low,
        objective=Interval(-o.estimate, -o.high, -o.low, o.level, o.method, o.n))


def minimised(values, lower_is_better: bool) -> np.ndarray:
    """The values the GP minimises: the metric, negated where higher is better."""
    return (1.0 if lower_is_better else -1.0) * np.asarray(values, float)


def fit_curve(w, values, epochs_trained, *, epochs: float, bounds: tuple[float, float],
              lower_is_better: bool) -> SurrogateFit:
    """`surrogate.fit_objective_curve` in the metric's own units and sign."""
    y = minimised(values, lower_is_better)
    fit = fit_objective_curve(w, y, epochs_trained, epochs=epochs, bounds=bounds,
                              log_objective=bool(np.all(y > 0)))
    return in_metric_units(fit, lower_is_better)


def surrogate_json(fit: SurrogateFit, bounds: tuple[float, float], seeds: list[int] | None = None) -> dict:
    """`seeds`: the training seeds of the runs it was fitted on. With one seed (searches before
    2026-12-01 trained every trial on --seed) the band is that seed's curve, not a mean over
    seeds: it is said so, and never set against runs of other seeds."""
    return {
        "fitted": True,
        "n_observations": fit.n_observations,
        "seeds": seeds or [],
        "bounds": list(bounds),
        "log10_w": fit.log10_w.tolist(),
        "mean": fit.mean.tolist(),
        "low": fit.low.tolist(),
        "high": fit.high.tolist(),
        "p_min": fit.p_min.tolist(),
        "recommended_w": fit.recommended_w,
        "w_interval": _interval(fit.w_interval),
        "objective": _interval(fit.objective),
        "noise_std": fit.noise_std,
        "length_scale": fit.length_scale,
    }


def fit_surrogate(runs: list[dict], epochs: int, bounds: tuple[float, float], lower_is_better: bool,
                  fits: dict | None = None, loss: str = "") -> dict:
    """`fit_curve` on full-length with-MSE runs, as plain JSON (metric units), or a note;
    the fit itself goes into `fits[loss]` when given (the report draws it)."""
    mse_runs = [r for r in runs if r.get("with_mse", True) and finite(r.get("w"))]
    w = [float(r["w"]) for r in mse_runs]
    if len(set(w)) < 3:
        return {
            "fitted": False,
            "n_observations": len(w),
            "note": f"{len(set(w))} distinct w with full-length runs; the surrogate needs 3",
        }
    try:
        fit = fit_curve(w, [float(r["value"]) for r in mse_runs], [epochs] * len(w), epochs=epochs,
                        bounds=bounds, lower_is_better=lower_is_better)
    except ValueError as e:  # the surrogate refuses (say, a w outside the bounds): said, not fatal
        return {"fitted": False, "n_observations": len(w), "note": str(e)}
    if fits is not None:
        fits[loss] = fit
    return surrogate_json(fit, bounds, sorted({int(r["seed"]) for r in mse_runs if finite(r.get("seed"))}))


def candidates(runs: list[dict], surrogate: dict, lower_is_better: bool, loss: str = "") -> dict[str, dict]:
    """{candidate name: point} of one loss's confirmation stage, the recommended w read from
    the surrogate's JSON (none without a fit)."""
    recommended = {"with_mse": True, "w": surrogate["recommended_w"]} if surrogate.get("fitted") else None
    return named_candidates(runs, loss, recommended, lower_is_better)


# --- comparisons -------------------------------------------------------------------------


def difference(candidate, reference, lower_is_better: bool) -> tuple[Interval | None, str]:
    """(candidate - reference with its 95% interval, verdict), or (None, why not) below 2
    runs on a side. Welch's t interval; the percentile bootstrap from BOOTSTRAP_FROM runs
    each (estimates' coverage tests: below that the bootstrap undercovers)."""
    if len(candidate) < 2 or len(reference) < 2:
        return None, f"{TOO_FEW} ({len(candidate)} vs {len(reference)})"
    method = "bootstrap" if min(len(candidate), len(reference)) >= BOOTSTRAP_FROM else "welch"
    d = diff_interval(candidate, reference, method=method)
    return d, verdict(d, lower_is_better)


def compare(candidate, reference, lower_is_better: bool, min_effect: float | None = None) -> dict:
    """`difference` as JSON, with the difference relative to the reference mean, or a note.
    Given {seed: value} on both sides (`runs.by_seed`), same-seed runs are paired
    (`paired.compare_runs`: on the common seeds, Welch where fewer than 2 pair up); "pairs"
    says how many (0: unpaired) and "correlation" their measured r with its interval.
    With `min_effect` (% of the reference mean; the reference is the MSE baseline) the
    verdict is the equivalence verdict (`equivalence.judged`) and "largest_gain" is added."""
    pairing = _paired(candidate, reference)
    candidate, reference = _values(candidate), _values(reference)
    if pairing is None:
        d, _ = difference(candidate, reference, lower_is_better)
        return comparison_json(d, candidate, reference, lower_is_better, min_effect)
    return comparison_json(pairing.diff, candidate, reference, lower_is_better, min_effect,
                           pairing.pairs, pairing.correlation)


def comparison_json(d: Interval | None, candidate: list[float], reference: list[float],
                    lower_is_better: bool, min_effect: float | None = None, pairs: int = 0,
                    correlation: Interval | None = None) -> dict:
    """One comparison as results.json states it, from its interval `d` of candidate -
    reference (None: too few runs): `compare`'s, and the sequential race's at a look."""
    if d is None:
        return {
            "verdict": None,
            "n_candidate": len(candidate),
            "n_reference": len(reference),
            "note": "needs at least 2 full-length runs on each side",
        }
    ref = float(np.mean(reference))
    p = percent_of(d, ref) if ref else None  # the one % interval: stated and judged alike
    margin = {} if min_effect is None else equivalence.judged(d, p, min_effect, lower_is_better)
    return {
        "verdict": margin.get("verdict", verdict(d, lower_is_better)),
        "diff": d.estimate,
        "low": d.low,
        "high": d.high,
        "level": d.level,
        "method": d.method,
        "percent": p and p.estimate,
        "percent_low": p and p.low,
        "percent_high": p and p.high,
        "candidate_mean": float(np.mean(candidate)),
        "reference_mean": ref,
        "n_candidate": len(candidate),
        "n_reference": len(reference),
        "pairs": pairs,
        "correlation": _interval(correlation) if correlation else None,
        **{k: v for k, v in margin.items() if k != "verdict"},
    }


def percent_interval(c: dict) -> Interval | None:
    """A comparison's difference in % of its reference mean, as an Interval (None without one)."""
    if c.get("verdict") is None or c.get("percent") is None:
        return None
    return Interval(c["percent"], c["percent_low"], c["percent_high"], c["level"], c["method"])


def verdict_text(c: dict) -> str:
    """A comparison's verdict as the console and the report say it: against the MSE baseline
    `equivalence.sentence` ("equivalent within 5% (-0.4% [-3.1%, 2.3%]); a gain over 3.1% is
    ruled out at 95%"), else the word."""
    p = percent_interval(c)
    if "min_effect" not in c or p is None or c.get("largest_gain") is None:
        return str(c.get("verdict"))
    return equivalence.sentence(c["verdict"], p, c["min_effect"], c["largest_gain"])


def _values(runs) -> list[float]:
    return list(runs.values()) if isinstance(runs, dict) else list(runs)


def _paired(candidate, reference) -> Comparison | None:
    """`paired.compare_runs` of {seed: value} sides, or None where it does not pair them."""
    if not (isinstance(candidate, dict) and isinstance(reference, dict)):
        return None
    if min(len(candidate), len(reference)) < 2:  # `difference` says "too few runs"
        return None
    c = compare_runs(candidate, reference)
    return c if c.pairs else None


def pairing_text(c: dict) -> str:
    """How a comparison's interval was made: "paired, r = 0.99 [0.90, 1.00]", "paired (3
    pairs)" (r needs 4) or "unpaired"; the console and the report say it alike."""
    if not c.get("pairs"):
        return "unpaired"
    r = c.get("correlation")
    if r is None:
        return f"paired ({c['pairs']} pairs)"
    return f"paired, r = {r['estimate']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"


def comparisons(
    rows: list[dict], loss: str, epochs: int, lower_is_better: bool, key: str = "value",
    min_effect: float = equivalence.DEFAULT_MIN_EFFECT,
) -> dict[str, dict]:
    """'<candidate>_vs_<reference>' -> compare(...), from the confirmation runs; `key`
    "test_value" compares the same runs' test-split scores (searches with --holdout);
    `min_effect`: the equivalence margin of the verdicts against the baseline."""
    base = by_seed(baseline_runs(rows, epochs, key), key)
    conf = {c: by_seed(confirm_runs(rows, loss, c, epochs, key), key) for c in CANDIDATES}
    out = {}
    for cand in CANDIDATES:
        if conf[cand]:
            out[f"{cand}_vs_baseline"] = compare(conf[cand], base, lower_is_better, min_effect)
    if conf[RECOMMENDED] and conf[BEST_PAPER]:
        same = any({RECOMMENDED, BEST_PAPER} <= set(candidate_names(r))
                   for r in rows if r.get("role") == CONFIRM and r.get("loss") == loss)
        out[f"{RECOMMENDED}_vs_{BEST_PAPER}"] = (
            {"verdict": None, "note": "the recommended w is the best paper point"}
            if same
            else compare(conf[RECOMMENDED], conf[BEST_PAPER], lower_is_better)
        )
    return out


# --- the whole answer ----------------------------------------------------------------------


def baseline_summary(rows: list[dict], epochs: int, n_per_config: int) -> dict:
    """The MSE baseline's replicates: mean interval, run-to-run noise, what can be resolved."""
    values = baseline_values(rows, epochs)
    out: dict = {"values": values, "n": len(values)}
    if len(values) < 2:
        out["note"] = "fewer than 2 full-length baseline runs: no noise estimate (--baseline-seeds)"
        return out
    noise = run_noise(values)
    n = max(2, n_per_config)
    out.update(
        mean=_interval(mean_interval(values)),
        std=noise.std,
        cv=noise.cv,
        n_per_config=n,
        detectable_effect=detectable_effect(noise.cv, n),
        effect_asked=EFFECT,
        seeds_for_effect=seeds_needed(noise.cv, EFFECT) if noise.cv > 0 else 2,
    )
    budget = baseline_budget(rows, epochs)
    if budget is not None:
        out["noise_budget"] = budget_json(budget)
    return out


def loss_answer(rows: list[dict], loss: str, *, epochs: int, bounds: tuple[float, float],
                lower_is_better: bool, fits: dict | None = None,
                min_effect: float = equivalence.DEFAULT_MIN_EFFECT, raced: dict | None = None) -> dict:
    """A single loss's entry of results.json's "answer" (see the module docstring); `raced`:
    its comparisons from the sequential race ({"comparisons", "comparisons_test"}), if one ran."""
    runs = search_stage(rows, loss, epochs)
    surrogate = fit_surrogate(runs, epochs, bounds, lower_is_better, fits, loss)
    out = {
        "surrogate": surrogate,
        "candidates": candidates(runs, surrogate, lower_is_better, loss),
        "best_paper_point": best_paper_point(runs, loss, lower_is_better),
        "full_length_runs": len(runs),
        "comparisons": comparisons(rows, loss, epochs, lower_is_better, min_effect=min_effect),
    }
    if any(finite(r.get("test_value")) for r in rows if r.get("role") == CONFIRM):
        out["comparisons_test"] = comparisons(rows, loss, epochs, lower_is_better, "test_value", min_effect)
    if raced:
        out.update(raced)
    return out
