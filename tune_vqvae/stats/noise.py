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

    >>> b = split_eval_std([66.1, 70.2, 63.9, 68.0], [1.0, 1.0, 1.0, 1.0], n_eval=1000)
    >>> round(b.eval_share, 2), images_for_share(b, 0.1)
    (0.14, 1448)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NoiseBudget:
    """Variances of one config's score at `n_eval` evaluation images: total, training-seed
    part, evaluation-sample part, from `runs` runs."""

    total: float
    seed: float
    eval: float
    n_eval: int
    runs: int

    @property
    def eval_share(self) -> float:
        """The evaluation part's share of the run-to-run variance (0..1)."""
        return self.eval / (self.seed + self.eval) if self.seed + self.eval > 0 else 0.0


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
    ev = float(np.var(a - b, ddof=1)) / 4.0
    total = float(np.var((a + b) / 2.0, ddof=1))
    return NoiseBudget(total, max(0.0, total - ev), ev, n_eval, a.size)


def split_eval_std(scores, eval_std, n_eval: int) -> NoiseBudget:
    """The budget from per-run scores and each run's own evaluation std at `n_eval` images."""
    s, e = _runs(scores, "scores"), _runs(eval_std, "eval_std", 1)
    if s.size != e.size or np.any(e < 0):
        raise ValueError(f"split_eval_std: one std >= 0 per run, got {e.size} for {s.size} runs")
    ev, total = float(np.mean(e**2)), float(np.var(s, ddof=1))
    return NoiseBudget(total, max(0.0, total - ev), ev, n_eval, s.size)


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
