"""Verdicts with an equivalence margin, and the largest gain the data leave possible (issue 21).

A comparison's interval of `candidate - baseline` in percent of the baseline mean reads as:

- "better" / "worse": the whole interval on the good / bad side of 0 (a resolved difference,
  however small; "better" takes precedence over "equivalent" when both hold, since a
  resolved gain is the stronger statement);
- "equivalent": the whole interval inside +-min_effect% (two one-sided tests at the
  interval's level): no difference the user cares about, a conclusion, not a shrug;
- "not resolved": neither; more runs (or a wider margin) are needed.

The verdict words are defined here, once, except "not resolved", which the vocabulary
(`tune_vqvae.vocab.NOT_RESOLVED`) already spells for every question the runs cannot answer;
`vocab.VERDICTS` spells the older better / indistinguishable / worse of `intervals.verdict`.

    >>> from tune_vqvae.stats.intervals import Interval
    >>> pct = Interval(-0.4, -3.1, 2.3)          # candidate - baseline, % of the baseline
    >>> verdict(pct, min_effect=5.0), round(largest_gain(pct), 1)
    ('equivalent', 3.1)
    >>> describe(pct, 5.0)
    'equivalent within 5% (-0.4% [-3.1%, 2.3%]); a gain over 3.1% is ruled out at 95%'
"""

from __future__ import annotations

from ..vocab import NOT_RESOLVED
from .intervals import Interval
from .intervals import verdict as sided

BETTER, WORSE, EQUIVALENT = "better", "worse", "equivalent"  # NOT_RESOLVED: the vocabulary's
DEFAULT_MIN_EFFECT = 5.0  # the margin of `--min-effect`: 5% of the MSE baseline's mean
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


def judged(d: Interval, percent: Interval | None, min_effect: float, lower_is_better: bool) -> dict:
    """The decision against the MSE baseline, made here once: {"verdict": `verdict` of
    `percent` (d in % of the baseline mean), "min_effect", "largest_gain" (% of the baseline,
    positive = better)}. `percent` None (a baseline mean of 0 has no percentages): better /
    worse where d resolves a side, else not resolved, and no largest gain."""
    if percent is None:
        said = sided(d, lower_is_better)
        return {"verdict": said if said in (BETTER, WORSE) else NOT_RESOLVED,
                "min_effect": min_effect, "largest_gain": None}
    return {"verdict": verdict(percent, min_effect, lower_is_better), "min_effect": min_effect,
            "largest_gain": largest_gain(percent, lower_is_better)}


def describe(percent: Interval, min_effect: float, lower_is_better: bool = True) -> str:
    """One line: the verdict, the interval, and the gain ruled out at the interval's level."""
    return sentence(verdict(percent, min_effect, lower_is_better), percent, min_effect,
                    largest_gain(percent, lower_is_better))


def sentence(said: str, percent: Interval, min_effect: float, gain: float) -> str:
    """`describe`'s line from a verdict and largest gain already decided (a saved answer's)."""
    return (f"{headline(said, min_effect)} ({percent.estimate:.3g}% [{percent.low:.3g}%, "
            f"{percent.high:.3g}%]); {ruled_out(gain, percent.level)}")


def headline(said: str, min_effect: float) -> str:
    """The verdict as said: "equivalent within 5%" (the margin is part of the claim), else the word."""
    return f"equivalent within {min_effect:g}%" if said == EQUIVALENT else said


def ruled_out(gain: float, level: float = 0.95) -> str:
    """What the interval excludes: "a gain over 3.1% is ruled out at 95%", or, when even its
    good end is a loss, "a loss of at least 1% at 95%"."""
    at = f"{100 * level:.4g}%"
    if gain > 0:
        return f"a gain over {gain:.3g}% is ruled out at {at}"
    return f"a loss of at least {-gain:.3g}% at {at}"
