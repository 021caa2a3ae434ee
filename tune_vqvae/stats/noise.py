"""The noise budget: a config's run-to-run variance split into its training-seed part and
its evaluation-sample part (issue 21).

A run's score on a finite evaluation set is S = mu + T + E: T the training seed's effect
(more training runs average it out), E the error of scoring on n images (more evaluation
images shrink it, about as 1/n; cheap). Two ways to see E:

- `split_halves`: each run scored on two disjoint halves A, B of the evaluation set. E_A and
  E_B are independent with variance s2_half each, so var(A - B) = 2 s2_half; the full set's
  score is about (A + B) / 2, with evaluation variance s2_half / 2 = var(A - B) / 4, and
  var((A + B) / 2) = var(T) + var(A - B) / 4.
- `split_eval_std`: each run's own evaluation std (a bootstrap over images, or KID's
  per-run std): var(E) = mean of their squares, var(T) = var(S) - var(E).

Both take var(T) as at least 0 (a negative estimate is sampling noise: no seed part seen).

What "evaluation" covers: the choice of images (which shrinks as 1/n). SWD's 4 x 128 random
directions and KID's fixed subsets add a part that does not shrink with n; each half draws
its own directions, so that part enters var(A - B) / 4 only half (the scoring share is then a
little low for SWD), and `images_for_share` assumes all of it shrinks as 1/n.

    >>> b = split_eval_std([66.1, 70.2, 63.9, 68.0], [1.0, 1.0, 1.0, 1.0], n_eval=1000)
    >>> round(b.eval_share, 2), images_for_share(b, 0.1)
    (0.14, 1448)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..vocab import half_metric, images_metric
from .runs import baseline_runs, finite

# A results row's noise-budget columns: its objective on each half and the full set's size.
HALF_KEYS = ("value_half1", "value_half2", "value_images")
SHARE = 0.1  # the evaluation share the answer asks about: "N images bring it to 10%"
INTERVAL_RUNS = 5  # the fewest runs the share's bootstrap interval is given for


@dataclass(frozen=True)
class NoiseBudget:
    """Variances of one config's score at `n_eval` evaluation images: total, training-seed
    part, evaluation-sample part, from `runs` runs."""

    total: float
    seed: float
    eval: float
    n_eval: int
    runs: int
    # eval_share's 95% interval: a percentile bootstrap over runs (`_share_interval`)
    share_interval: tuple[float, float] | None = None

    @property
    def eval_share(self) -> float:
        """The evaluation part's share of the run-to-run variance (0..1; 0 with none)."""
        share = _split(self.total, self.eval)[1]
        return 0.0 if math.isnan(share) else share


def _split(total: float, ev: float) -> tuple[float, float]:
    """(training-seed part, evaluation share) of a total variance with evaluation part `ev`:
    the seed part is what the total leaves, >= 0 (a noisy `ev` can exceed the total); the
    share is NaN where there is no variance at all."""
    seed = max(0.0, total - ev)
    return seed, ev / (seed + ev) if seed + ev > 0 else math.nan


def _runs(values, name: str, min_n: int = 2) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size < min_n or not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: need at least {min_n} finite per-run values, got {x.size}")
    return x


def split_halves(half_a, half_b, n_eval: int) -> NoiseBudget:
    """The budget from per-run scores on two disjoint halves of an `n_eval`-image set."""
    a, b = _runs(half_a, "half_a"), _runs(half_b, "half_b")
    if a.size != b.size:
        raise ValueError(f"split_halves: one score per run on each half, got {a.size} and {b.size}")
    return _budget(_by_halves, n_eval, a, b)


def split_eval_std(scores, eval_std, n_eval: int) -> NoiseBudget:
    """The budget from per-run scores and each run's own evaluation std at `n_eval` images."""
    s, e = _runs(scores, "scores"), _runs(eval_std, "eval_std", 1)
    if s.size != e.size or np.any(e < 0):
        raise ValueError(f"split_eval_std: one std >= 0 per run, got {e.size} for {s.size} runs")
    return _budget(_by_eval_std, n_eval, s, e)


def _by_halves(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(total, evaluation) variances at the full set from the runs' two halves."""
    return float(np.var((a + b) / 2.0, ddof=1)), float(np.var(a - b, ddof=1)) / 4.0


def _by_eval_std(s: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    return float(np.var(s, ddof=1)), float(np.mean(e**2))


def _budget(variances, n_eval: int, *per_run: np.ndarray) -> NoiseBudget:
    total, ev = variances(*per_run)
    return NoiseBudget(total, _split(total, ev)[0], ev, n_eval, per_run[0].size,
                       _share_interval(variances, per_run))


def _share_interval(variances, per_run: tuple[np.ndarray, ...], draws: int = 2000,
                    level: float = 0.95) -> tuple[float, float] | None:
    """The evaluation share's percentile bootstrap interval: the runs resampled with
    replacement (each run's figures together), a fixed seed so that the search and the
    report print the same. Few runs make it wide, as they should; it covers less than its
    level with very few (tests/test_stats_noise.py measures it), and below `INTERVAL_RUNS`
    there is none: 4 runs have only 35 distinct resamples."""
    n = per_run[0].size
    if n < INTERVAL_RUNS:
        return None
    idx = np.random.default_rng(0).integers(0, n, size=(draws, n))
    # a resample of one run repeated has no variance, so no share (NaN): left out
    shares = [_split(*variances(*(x[i] for x in per_run)))[1] for i in idx]
    low, high = np.nanquantile(shares, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def images_for_share(budget: NoiseBudget, share: float = 0.1) -> int:
    """Evaluation images at which the evaluation part is at most `share` of the run-to-run
    variance (it shrinks as 1/images); the current n_eval when it already is. With no seed
    part measured, no number of images reaches a share below 1: raises ValueError."""
    if not 0 < share < 1:
        raise ValueError(f"images_for_share: share must be in (0, 1), got {share}")
    if budget.eval_share <= share:
        return budget.n_eval
    if budget.seed <= 0:
        raise ValueError("images_for_share: no training-seed variance measured; "
                         "the evaluation's share is 1 at any size")
    # eval * n_eval / n <= share / (1 - share) * seed
    return math.ceil(budget.eval * budget.n_eval * (1 - share) / (share * budget.seed))


def halves_of(metrics: dict, objective: str) -> dict:
    """A results row's HALF_KEYS from a trial's last metrics (the search's results and the
    report's trials both read them here); None where the objective has no halves."""
    names = (half_metric(objective, 1), half_metric(objective, 2), images_metric(objective))
    return {key: _float(metrics.get(name)) for key, name in zip(HALF_KEYS, names)}


def _float(v) -> float | None:
    return float(v) if finite(v) else None


def baseline_budget(rows: Iterable[dict], epochs: int) -> NoiseBudget | None:
    """The MSE baseline's noise budget from its full-length runs scored on two halves; None
    with fewer than 2 such runs (an objective without halves: psnr, ssim, mse)."""
    runs = [r for r in baseline_runs(rows, epochs, "value_half1")
            if finite(r.get("value_half2")) and finite(r.get("value_images"))]
    if len(runs) < 2 or len({r["value_images"] for r in runs}) > 1:  # mixed --fid-samples: no one n
        return None
    # one order whoever reads the rows: the bootstrap draws runs by position
    runs.sort(key=lambda r: (r.get("seed") or 0, r["value_half1"]))
    return split_halves([r["value_half1"] for r in runs], [r["value_half2"] for r in runs],
                        n_eval=int(runs[0]["value_images"]))


def budget_json(b: NoiseBudget) -> dict:
    """results.json's baseline "noise_budget": variances, the evaluation share and the images
    that would bring it to SHARE (None: no seed part measured, no size will)."""
    try:
        images = images_for_share(b, SHARE)
    except ValueError:
        images = None
    return {"total": b.total, "seed": b.seed, "eval": b.eval, "eval_share": b.eval_share,
            "eval_share_interval95": list(b.share_interval) if b.share_interval else None,
            "n_eval": b.n_eval, "runs": b.runs, "share_asked": SHARE, "images_for_share": images}


def budget_text(d: dict) -> str:
    """The noise budget as the console and the report say it."""
    low_high = d.get("eval_share_interval95")  # absent from searches before 2026-12-01 (fifth)
    band = f" [{100 * low_high[0]:.0f}, {100 * low_high[1]:.0f}]" if low_high else ""
    text = (f"{100 * d['eval_share']:.0f}%{band} of the baseline's run-to-run variance is the scoring "
            f"of {d['n_eval']:,} images, {100 - 100 * d['eval_share']:.0f}% the training seed "
            f"(halves of the evaluation set, {d['runs']} runs)")
    if d["eval_share"] <= d["share_asked"]:
        return text + "; more evaluation images would not help, more seeds would"
    if d["images_for_share"] is None:
        return text + "; no training-seed variance seen: score on more images before adding seeds"
    return (text + f"; about {d['images_for_share']:,} evaluation images would bring the scoring "
            f"part to {100 * d['share_asked']:.0f}%")
