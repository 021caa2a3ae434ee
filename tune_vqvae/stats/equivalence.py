"""Verdicts with an equivalence margin, and the largest gain the data leave possible (issue 21).

A comparison's interval of `candidate - baseline` in percent of the baseline mean reads as:

- "better" / "worse": the whole interval on the good / bad side of 0 (a resolved difference,
  however small; "better" takes precedence over "equivalent" when both hold, since a
  resolved gain is the stronger statement);
- "equivalent": the whole interval inside +-min_effect% (two one-sided tests at the
  interval's level): no difference the user cares about, a conclusion, not a shrug;
- "not resolved": neither; more runs (or a wider margin) are needed.

The verdict words are defined here, once (tune_vqvae.vocab.VERDICTS spells only the older
better / indistinguishable / worse of `intervals.verdict`).

    >>> from tune_vqvae.stats.intervals import Interval
    >>> pct = Interval(-0.4, -3.1, 2.3)          # candidate - baseline, % of the baseline
    >>> verdict(pct, min_effect=5.0), round(largest_gain(pct), 1)
    ('equivalent', 3.1)
    >>> describe(pct, 5.0)
    'equivalent within 5% (-0.4% [-3.1%, 2.3%]); a gain over 3.1% is ruled out at 95%'
"""

from __future__ import annotations

from .intervals import Interval

BETTER, WORSE, EQUIVALENT, NOT_RESOLVED = "better", "worse", "equivalent", "not resolved"
VERDICTS = (BETTER, WORSE, EQUIVALENT, NOT_RESOLVED)
RESOLVED = (BETTER, WORSE, EQUIVALENT)


def verdict(percent: Interval, min_effect: float, lower_is_better: bool = True) -> str:
    """The verdict of a `candidate - baseline` interval in % of the baseline (see the module);
    `min_effect` is the equivalence margin P in percent (> 0)."""
    if min_effect <= 0:
        raise ValueError(f"verdict: the equivalence margin must be > 0 percent, got {min_effect}")
    good_low, good_high = (percent.high < 0, percent.low > 0) if lower_is_better else (percent.low > 0,
                                                                                      percent.high < 0)
    if good_low:
        return BETTER
    if good_high:
        return WORSE
    if -min_effect <= percent.low and percent.high <= min_effect:
        return EQUIVALENT
    return NOT_RESOLVED


def largest_gain(percent: Interval, lower_is_better: bool = True) -> float:
    """The largest gain (in % of the baseline, positive = better) the interval leaves possible:
    its good end. Negative when even the best case is a loss."""
    return -percent.low if lower_is_better else percent.high


def describe(percent: Interval, min_effect: float, lower_is_better: bool = True) -> str:
    """One line: the verdict, the interval, and the gain ruled out at the interval's level."""
    said = verdict(percent, min_effect, lower_is_better)
    head = f"equivalent within {min_effect:g}%" if said == EQUIVALENT else said
    gain = largest_gain(percent, lower_is_better)
    level = f"{100 * percent.level:.4g}%"
    bound = (f"a gain over {gain:.3g}% is ruled out at {level}" if gain > 0
             else f"a loss of at least {-gain:.3g}% at {level}")
    return (f"{head} ({percent.estimate:.3g}% [{percent.low:.3g}%, {percent.high:.3g}%]); {bound}")
