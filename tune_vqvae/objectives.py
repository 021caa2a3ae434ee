"""What a search may select on: one record per objective, read by every layer (the CLI's
--objective, the trainable's reported `objective`, Optuna and ASHA, the answer's direction,
the report's tables and figures). A new objective is its record and its scorer.

Plain Python (no torch, no ray). The reported `objective` is always minimised (Optuna, ASHA):
`minimised(value)` = value, or -value where higher is better; `lower_is_better` is the one
spelling of the direction.

    >>> o = get("val_psnr")
    >>> o.lower_is_better, o.unit, o.test_name, o.minimised(30.0)
    (False, 'dB', 'test_psnr', -30.0)
    >>> o.report({"val_psnr": 30.0})
    {'val_psnr': 30.0, 'objective': -30.0}
    >>> get("fid").needs_inception, get("swd").needs_inception
    (True, False)
    >>> pair(["swd", "val_psnr"]), pair(["swd"]), pair(None)
    (('swd', 'val_psnr'), ('swd', None), (None, None))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import UserError
from .vocab import test_metric


@dataclass(frozen=True)
class Objective:
    name: str  # the metric's key in a trial's results (and --objective's value)
    lower_is_better: bool
    text: str  # what it measures, as the report says it
    unit: str = ""
    needs_inception: bool = False  # scored on Inception features: the search needs its weights
    evaluated: bool = False  # scored by FIDEvaluator (every eval_every epochs), not each epoch
    # The scorer: the metric's value from the metrics a trial has at an epoch; None: the
    # metric of that name (the trainer's and the evaluator's own).
    scorer: Callable[[dict], float] | None = None

    @property
    def test_name(self) -> str:
        """The test-split counterpart reported with --holdout: fid -> test_fid, val_mse -> test_mse."""
        return test_metric(self.name)

    @property
    def direction(self) -> str:
        return "lower is better" if self.lower_is_better else "higher is better"

    @property
    def mode(self) -> str:
        """The direction in Ray Tune's and Optuna's word: "min" or "max"."""
        return "min" if self.lower_is_better else "max"

    def minimised(self, value: float) -> float:
        return value if self.lower_is_better else -value

    def score(self, metrics: dict) -> float:
        return float(self.scorer(metrics) if self.scorer is not None else metrics[self.name])

    def report(self, metrics: dict) -> dict:
        """What a trial reports for it: the metric itself and the minimised `objective`."""
        value = self.score(metrics)
        return {self.name: value, "objective": self.minimised(value)}

    def value_of(self, result: dict) -> float:
        """The metric of a reported result, read back from `objective` if the metric is
        missing (the sign undone)."""
        value = result.get(self.name)
        if value is None:
            return self.minimised(result.get("objective", float("nan")))
        return value


_RECORDS = (
    Objective("fid", True, "FID (Fréchet Inception distance between held-out images and their "
              "reconstructions)", needs_inception=True, evaluated=True),
    Objective("swd", True, "SWD (multi-scale sliced Wasserstein distance of Laplacian-pyramid "
              "patches, the offline stand-in for FID: no Inception weights were available to the "
              "trials)", evaluated=True),
    Objective("kid", True, "KID (kernel Inception distance: unbiased MMD² of Inception features "
              "with the cubic kernel, mean over 100 subsets of 1,000 images)", needs_inception=True,
              evaluated=True),
    Objective("val_mse", True, "MSE of the held-out reconstructions (model range [-1, 1])"),
    Objective("val_recon", True, "the run's own reconstruction loss on the held-out images"),
    Objective("val_psnr", False, "PSNR of the held-out reconstructions", unit="dB"),
    Objective("val_ssim", False, "SSIM of the held-out reconstructions"),
    Objective("train_loss", True, "the training loss of the last epoch"),
)
OBJECTIVES: dict[str, Objective] = {o.name: o for o in _RECORDS}


def get(name: str) -> Objective:
    """The record of an objective; UserError naming the valid ones."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise UserError(f"unknown objective {name!r}; valid: {', '.join(OBJECTIVES)}") from None


def register(objective: Objective) -> None:
    """Add an objective (its record and scorer) for --objective and every layer after it."""
    OBJECTIVES[objective.name] = objective


def pair(names: list[str] | None) -> tuple[str | None, str | None]:
    """--objective given 0, 1 or 2 times -> (objective, trade-off objective); a search selects
    on one objective or estimates the front of two (issue 24). UserError: more than two, one
    twice, an unknown one."""
    names = list(names or [])
    if len(names) > 2:
        raise UserError(f"--objective given {len(names)} times ({', '.join(names)}): a search has "
                        f"one objective, or two for a perception-distortion front")
    for name in names:
        if name not in OBJECTIVES:
            raise UserError(f"unknown --objective {name!r}; valid: {', '.join(OBJECTIVES)}")
    if len(names) == 2 and names[0] == names[1]:
        raise UserError(f"--objective {names[0]} given twice: a front needs two different objectives, "
                        f"e.g. --objective swd --objective val_psnr")
    return (names + [None, None])[0], (names + [None, None])[1]
