"""Equivalence verdicts and the largest possible gain (tune_vqvae.stats.equivalence) on known inputs."""

from __future__ import annotations

import pytest

from tune_vqvae.stats.equivalence import (
    BETTER,
    EQUIVALENT,
    NOT_RESOLVED,
    WORSE,
    describe,
    largest_gain,
    verdict,
)
from tune_vqvae.stats.intervals import Interval


@pytest.mark.parametrize("low, high, lower_is_better, said", [
    (-4.0, -1.0, True, BETTER),        # wholly below 0: a resolved gain (also inside +-5%: better wins)
    (1.0, 3.0, True, WORSE),
    (-3.1, 2.3, True, EQUIVALENT),     # inside +-5%
    (-5.0, 5.0, True, EQUIVALENT),     # the margin's ends count as inside
    (-6.0, 2.0, True, NOT_RESOLVED),   # a 6% gain still possible
    (-2.0, 7.0, True, NOT_RESOLVED),
    (1.0, 3.0, False, BETTER),         # higher is better (PSNR): above 0 is a gain
    (-4.0, -1.0, False, WORSE),
])
def test_verdicts_on_known_intervals(low, high, lower_is_better, said):
    assert verdict(Interval(0.5 * (low + high), low, high), 5.0, lower_is_better) == said


def test_largest_gain_and_its_sentence():
    assert largest_gain(Interval(-0.4, -3.1, 2.3)) == pytest.approx(3.1)
    assert largest_gain(Interval(2.0, 1.0, 3.0), lower_is_better=False) == pytest.approx(3.0)
    assert largest_gain(Interval(2.0, 1.0, 3.0)) == pytest.approx(-1.0)  # even the best case loses 1%
    assert "a gain over 3.1% is ruled out at 95%" in describe(Interval(-0.4, -3.1, 2.3), 5.0)
    assert describe(Interval(2.0, 1.0, 3.0), 5.0).startswith("worse") and "a loss of at least 1%" in \
        describe(Interval(2.0, 1.0, 3.0), 5.0)
    with pytest.raises(ValueError, match="margin"):
        verdict(Interval(0.0, -1.0, 1.0), 0.0)
