"""The best w within a distortion budget (issue 24): the w whose objective's posterior mean is
best among the weights that meet the budget with probability >= `level` (95%).

Two fits of the existing surrogate on the same runs and the same grid of log10 w:

- the objective, as the answer fits it (`answer.fit_curve`: its units, sign and log scale);
- the budget's slack (`Constraint.slack`, <= 0 within the budget) on a linear scale, as
  Optuna's GPSampler models a constraint: a GP on the constraint value and P(value <= 0).
  The slack is affine in the metric, and the GP standardises its targets with a
  sign-symmetric prior, so for PSNR and SSIM this is the posterior `answer.fit_curve` gives
  the metric itself. A log scale (as `fit_curve` picks for positive values) would make a
  positive slack everywhere certain, and the budget's bound is what matters here.

The band of a fit is the pointwise posterior of the run's *expected* value (without the
run-to-run noise), normal on the linear scale: its sd is the half-width over the normal
quantile of its level, and P(feasible) = Phi(-mean / sd) per grid point. The confirmation
runs then check the budget on fresh seeds with the paired statistics, as the objective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..constraints import Constraint
from .answer import fit_curve, minimised
from .runs import baseline_values, finite, search_stage
from .surrogate import SurrogateFit, fit_objective_curve, observed

LEVEL = 0.95  # the probability of meeting the budget a recommendation needs (issue 24)


@dataclass(frozen=True)
class ConstrainedRecommendation:
    """`recommended_w`: best objective's posterior mean among grid points (within the
    observed w) with `p_feasible` >= `level`; None, with a `note`, where there is none.
    `objective` (estimate, low, high): the objective's band there, in its own units.
    `unconstrained_w`: the objective fit's own recommendation, for comparison."""

    constraint: Constraint
    level: float
    baseline_mean: float
    threshold: float
    log10_w: np.ndarray
    p_feasible: np.ndarray
    recommended_w: float | None
    objective: tuple[float, float, float] | None
    p_at_recommended: float | None
    unconstrained_w: float
    note: str | None = None

    def to_json(self) -> dict:
        """Strict JSON (no inf/nan: a missing number is null)."""
        est = self.objective
        return {
            "constraint": str(self.constraint),
            "description": self.constraint.describe(),
            "level": self.level,
            "baseline_mean": _number(self.baseline_mean),
            "threshold": _number(self.threshold),
            "log10_w": [_number(v) for v in self.log10_w],
            "p_feasible": [_number(v) for v in self.p_feasible],
            "recommended_w": _number(self.recommended_w),
            "objective": None if est is None else dict(zip(("estimate", "low", "high"), map(_number, est))),
            "p_feasible_at_recommended": _number(self.p_at_recommended),
            "unconstrained_w": _number(self.unconstrained_w),
            "note": self.note,
        }


def _number(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def feasibility(slack_fit: SurrogateFit) -> np.ndarray:
    """P(expected slack <= 0) on the fit's grid, from its mean and pointwise band (normal on
    the linear scale: fitted with log_objective=False)."""
    z = stats.norm.ppf(0.5 + slack_fit.objective.level / 2)
    sd = np.maximum((slack_fit.high - slack_fit.low) / (2 * z), 1e-300)  # > 0: the GP's noise floor
    return stats.norm.cdf(-slack_fit.mean / sd)


def recommend(w, objective_values, constrained_values, baseline_values, *, constraint: Constraint,
              lower_is_better: bool, epochs_trained, epochs: int, bounds: tuple[float, float],
              level: float = LEVEL) -> ConstrainedRecommendation:
    """The constrained recommendation from one loss's full-length search-stage runs (one
    entry per run: w, the objective, the constrained metric; `stats.runs.search_stage`
    chooses them) and the MSE baseline's values of the constrained metric.
    `lower_is_better`: the objective's direction. The surrogate's checks apply (ValueError)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if len(baseline_values) == 0:
        raise ValueError("the budget is relative to the MSE baseline: it needs the baseline's runs")
    # The baseline mean is taken as known, as `paired.percent_of` does: its own uncertainty
    # (sd/sqrt(n)) is left out here; the confirmation's paired comparison accounts for it.
    baseline_mean = float(np.mean(baseline_values))
    slack = [constraint.slack(float(v), baseline_mean) for v in constrained_values]
    fit = fit_curve(w, objective_values, epochs_trained, epochs=epochs, bounds=bounds,
                    lower_is_better=lower_is_better)
    slack_fit = fit_objective_curve(w, slack, epochs_trained, epochs=epochs, bounds=bounds,
                                    log_objective=False)
    p = feasibility(slack_fit)
    return ConstrainedRecommendation(
        constraint=constraint, level=level, baseline_mean=baseline_mean,
        threshold=constraint.threshold(baseline_mean), log10_w=fit.log10_w, p_feasible=p,
        unconstrained_w=fit.recommended_w,
        # never an extrapolation, as the surrogate's own recommendation
        **_best_feasible(fit, p, observed(fit.log10_w, w), level, lower_is_better, constraint))


def budget_baseline(rows, epochs: int, constraint: Constraint) -> list[float]:
    """The MSE baseline's values of the constrained metric a budget is relative to: its
    full-length runs (`runs.baseline_values`); the search calls it on the baseline
    experiment's rows before its loss searches start, the answer on all the rows."""
    return baseline_values(rows, epochs, key=constraint.metric)


def constrained_answer(rows, loss: str, *, epochs: int, bounds: tuple[float, float],
                       lower_is_better: bool, constraint: Constraint) -> dict:
    """A single loss's answer["constrained"]: `recommend` on its search-stage runs (the
    with-MSE full-length runs the surrogate fits, with a finite constrained metric) and every
    full-length MSE baseline run's value of the metric, as strict JSON; or {"constraint",
    "note"} where it cannot be fitted."""
    runs = [r for r in search_stage(rows, loss, epochs)
            if r.get("with_mse", True) and finite(r.get("w")) and finite(r.get(constraint.metric))]
    base = budget_baseline(rows, epochs, constraint)
    why = None
    if len({float(r["w"]) for r in runs}) < 3:
        why = (f"{len({float(r['w']) for r in runs})} distinct w with full-length runs reporting "
               f"{constraint.metric}; the surrogates need 3")
    elif not base:
        why = f"no full-length MSE baseline run reported {constraint.metric}: the budget is relative to it"
    if why is None:
        try:
            return recommend([float(r["w"]) for r in runs], [float(r["value"]) for r in runs],
                             [float(r[constraint.metric]) for r in runs], base, constraint=constraint,
                             lower_is_better=lower_is_better, epochs_trained=[epochs] * len(runs),
                             epochs=epochs, bounds=bounds).to_json()
        except ValueError as e:  # the surrogate refuses (say, a w outside the bounds): said, not fatal
            why = str(e)
    return {"constraint": str(constraint), "description": constraint.describe(), "note": why}


def _best_feasible(fit: SurrogateFit, p: np.ndarray, inside: np.ndarray, level: float,
                   lower_is_better: bool, constraint: Constraint) -> dict:
    """The recommendation's fields: the best objective's posterior mean among the observed
    grid points with P(feasible) >= level, or none and the note."""
    ok = inside & (p >= level)
    if not ok.any():
        return {"recommended_w": None, "objective": None, "p_at_recommended": None,
                "note": _infeasible(fit, p, inside, level, constraint)}
    best = int(np.argmin(np.where(ok, minimised(fit.mean, lower_is_better), np.inf)))
    return {"recommended_w": float(10 ** fit.log10_w[best]),
            "objective": (float(fit.mean[best]), float(fit.low[best]), float(fit.high[best])),
            "p_at_recommended": float(p[best])}


def _infeasible(fit: SurrogateFit, p: np.ndarray, inside: np.ndarray, level: float,
                constraint: Constraint) -> str:
    """The note where no w is feasible enough: the likeliest w and how likely it is."""
    i = int(np.argmax(np.where(inside, p, -1.0)))
    return (f"no searched w keeps {constraint.describe()} with probability >= {level:.0%} "
            f"(likeliest: w = {10 ** fit.log10_w[i]:.3g}, P = {p[i]:.2f}); loosen the budget, "
            f"or run more w near the likeliest")
