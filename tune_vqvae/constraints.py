"""A distortion budget (issue 24): `--constraint "val_psnr >= -0.2"` bounds a metric relative
to the MSE baseline's mean, in the metric's own units ("-0.2": 0.2 dB below it) or in percent
of that mean ("-1%"). The metric is one an `objectives` record knows (its direction and
unit come from there). Plain Python (no torch, no ray).

`slack` is the budget in Optuna's convention for `constraints_func`: <= 0 is feasible.

    >>> c = parse("val_psnr >= -0.2")
    >>> c
    Constraint(metric='val_psnr', op='>=', amount=-0.2, unit='')
    >>> c.describe()
    "val_psnr at most 0.2 dB below the MSE baseline's mean"
    >>> round(c.slack(24.9, baseline_mean=25.0), 6), c.satisfied(24.7, baseline_mean=25.0)
    (-0.1, False)
    >>> p = parse("val_mse<=+5%")
    >>> str(p), p.threshold(0.02), p.describe()
    ('val_mse <= 5%', 0.021, "val_mse at most 5% above the MSE baseline's mean")
    >>> parse(str(p)) == p
    True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from . import objectives
from .errors import UserError

PERCENT = "%"  # the amount is in % of the baseline's mean; "": in the metric's own units
OPS = (">=", "<=")
# METRIC OP AMOUNT [UNIT]: UNIT "%" or the metric's own ("dB"); what does not fit is said in parse
_FORM = re.compile(r"^\s*(?P<metric>\S+?)\s*(?P<op>[<>=!]+)\s*"
                   r"(?P<amount>[^%\s]*?)\s*(?P<unit>%|[^\W\d]*)\s*$")
_EXAMPLE = "e.g. 'val_psnr >= -0.2' (dB from the MSE baseline's mean) or 'val_psnr >= -1%'"


@dataclass(frozen=True)
class Constraint:
    """`metric op baseline_mean + amount` (unit "") or `+ amount% of |baseline_mean|` ("%")."""

    metric: str
    op: str  # ">=" (a higher-is-better metric's budget) or "<="
    amount: float
    unit: str = ""

    def __str__(self) -> str:  # what parse() reads back, and what search.json would keep
        return f"{self.metric} {self.op} {self.amount:g}{self.unit}"

    def threshold(self, baseline_mean: float) -> float:
        """The bound in the metric's units. The percent form is of |mean| (as
        `stats.paired.percent_of`), so "-1%" is always below the baseline, whatever its sign."""
        if self.unit != PERCENT:
            return baseline_mean + self.amount
        if baseline_mean == 0:
            raise UserError(f"--constraint '{self}': the MSE baseline's mean {self.metric} is 0, so "
                            f"a percent budget is undefined; give it in the metric's units")
        return baseline_mean + abs(baseline_mean) * self.amount / 100

    def threshold_slope(self, baseline_mean: float) -> float:
        """How far the bound moves per unit of the baseline's mean (d threshold / d mean): 1,
        or 1 + sign(mean) * amount / 100 in the percent form (of |mean|)."""
        if self.unit != PERCENT:
            return 1.0
        return 1 + math.copysign(1.0, baseline_mean) * self.amount / 100

    def slack(self, value: float, baseline_mean: float) -> float:
        """How far `value` is past the bound, in the metric's units: <= 0 within the budget
        (Optuna's `constraints_func` convention), > 0 over it."""
        bound = self.threshold(baseline_mean)
        return bound - value if self.op == ">=" else value - bound

    def satisfied(self, value: float, baseline_mean: float) -> bool:
        return self.slack(value, baseline_mean) <= 0

    def describe(self) -> str:
        """The budget as the console says it: "val_psnr at most 0.2 dB below the MSE baseline's mean"."""
        unit = objectives.get(self.metric).unit
        size = f"{abs(self.amount):g}{self.unit or (' ' + unit if unit else '')}"
        side = "below" if self.amount < 0 else "above"
        if self.amount == 0:
            said = "at least" if self.op == ">=" else "at most"
        elif (self.op == ">=") == (self.amount < 0):  # the bound gives way from the baseline
            said = f"at most {size} {side}"
        else:
            said = f"at least {size} {side}"
        return f"{self.metric} {said} the MSE baseline's mean"


def parse(text: str) -> Constraint:
    """`--constraint`'s value, "METRIC >= AMOUNT" or "METRIC <= AMOUNT%", as a Constraint;
    UserError with one line naming the fix for anything else."""
    def bad(what: str) -> UserError:
        return UserError(f"--constraint {text!r}: {what}")

    m = _FORM.match(text)
    if m is None:
        raise bad(f"expected METRIC >= AMOUNT or METRIC <= AMOUNT[%], {_EXAMPLE}")
    metric, op = m["metric"], m["op"]
    if metric not in objectives.OBJECTIVES:
        raise bad(f"unknown metric {metric!r}; valid: {', '.join(objectives.OBJECTIVES)}")
    if op not in OPS:
        raise bad(f"operator {op!r} is not supported; use >= or <=, {_EXAMPLE}")
    try:
        amount = float(m["amount"])
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount):
        raise bad(f"amount {text[m.end('op'):].strip()!r} is not a finite number; {_EXAMPLE}")
    record = objectives.get(metric)
    unit = "" if m["unit"] == record.unit else m["unit"]  # "-0.2 dB" is "-0.2" for val_psnr
    if unit not in ("", PERCENT):
        raise bad(f"unit {unit!r}: give the amount in {metric}'s own units"
                  f"{f' ({record.unit})' if record.unit else ''} or in %, {_EXAMPLE}")
    wanted = "<=" if record.lower_is_better else ">="
    if op != wanted:  # a budget stops the metric getting worse: the other side is a typo
        raise bad(f"{metric}: {record.direction}, so a budget bounds it with {wanted}, not {op}; "
                  f"write '{metric} {wanted} {m['amount']}{m['unit']}'")
    return Constraint(metric, op, amount, unit)
