"""The statistics of a search, the one place that decides anything about its answer: the
search calls these on its results rows, the report (`analysis`) turns files into the same rows
and calls the same functions. Plain numpy/scipy (no ray, no pandas); torch when a GP is fitted.

- `intervals`: t / Welch / bootstrap intervals, verdicts, run-to-run noise, seeds needed;
- `surrogate`: the GP of objective(log10 w), and over (log10 w1, log10 w2) for a pair;
- `runs`: which runs count (full-length, roles, candidates, the same-point rule);
- `answer`: the answer for one loss; `joint`: for a pair; `overall`: for a whole search.
"""

from .answer import compare, difference, fit_curve
from .intervals import Interval, Noise, diff_interval, mean_interval, run_noise, verdict
from .overall import format_answer, search_answer
from .runs import is_full_length, merge_candidates

__all__ = ["Interval", "Noise", "search_answer", "compare", "diff_interval", "difference", "fit_curve",
           "format_answer", "is_full_length", "mean_interval", "merge_candidates", "run_noise", "verdict"]
