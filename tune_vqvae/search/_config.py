"""The settings of a search (`SearchConfig`, saved as search.json) and what the trials get
from them: the TrainConfig, the objective and the FID set-up, the search spaces."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from .. import constraints, objectives
from ..curves import load_curve
from ..data import DataConfig
from ..errors import UserError
from ..losses import PERCEPTUAL_LOSSES, LossConfig, find_metrics, lpips
from ..metrics import FIDConfig, check_fid_weights, require_fid_weights, verify_fid_weights
from ..model import ModelConfig
from ..stats.equivalence import DEFAULT_MIN_EFFECT
from ..stats.sequential import (
    FIRST_LOOK,
    MAX_RACE_ROUNDS,
    default_budget,
    least_budget,
    max_rounds,
    round_cost,
)
from ..train import TrainConfig
from ..vocab import MAX_TRIALS
from . import _trackers
from ._spaces import SearchSpace, load_space, space_for


@dataclass
class SearchConfig:
    losses: list[str]
    space: str | None = None  # one file for all losses; None: search_spaces/<loss>.yaml
    # Optuna trials per loss, the points included (+ the baseline); 8 then the race of 20 runs:
    # the split `bench search` chose at no more runs than 20 trials and 3 fixed seeds
    num_samples: int = 8
    epochs: int = TrainConfig.epochs
    max_concurrent: int = 4  # per loss experiment
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 0.5 when the cluster has GPUs, else 0
    data: str = "builtin"
    train_images: int | None = None
    test_images: int | None = None
    builtin_train: int = DataConfig.builtin_train
    builtin_test: int = DataConfig.builtin_test
    val_images: int = TrainConfig.val_images
    holdout: int = DataConfig.holdout  # > 0: select on the last N training images, score the winners on test
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    hidden: int = ModelConfig.hidden
    codebook_size: int = ModelConfig.codebook_size
    objective: str | None = None  # None: fid when its weights are found, else swd
    # The second --objective (issue 24): the search is two-objective and each loss's answer
    # is the estimated front of `objective` vs `trade_off` over w (stats.front).
    trade_off: str | None = None
    fid_weights: str | None = None
    lpips_weights: str | None = None  # a directory holding LPIPS's two files, on every node
    fid_samples: int = FIDConfig.samples
    eval_every: int = 1
    storage_path: str = "runs/search"
    name: str | None = None
    seed: int = TrainConfig.seed
    early_stop: bool = False  # ASHA cut the small w on short budgets (bench search, issue 12)
    grace_period: int | None = None  # None: max(1, epochs // 3)
    max_failures: int = 2
    seeds: int = 0  # after the search: re-run each loss's best config and the baseline N times
    replicates: int = 1  # runs (seeds) of each w the sampler proposes, paper points included
    baseline_seeds: int = 3  # runs of the MSE baseline (every comparison leans on it)
    # The fixed confirmation (confirm_budget 0): fresh-seed runs of each top candidate (0: none)
    confirm_seeds: int = 3
    # The sequential confirmation: a budget of runs (the baseline's included) spent in rounds
    # of one common seed until every verdict is resolved; None: the default race,
    # `sequential.default_budget` of the losses (set once they are known, `check_confirm_budget`);
    # 0: the fixed stage of confirm_seeds instead (--confirm-seeds N)
    confirm_budget: int | None = None
    # The race's MSE baseline runs per round: the common seed and B - 1 of its own, their mean
    # paired with each candidate (its noise dominates the differences: stats.sequential)
    race_baseline_runs: int = 1
    # The equivalence margin of the verdicts against the MSE baseline, % of its mean: saved
    # here (search.json) so that the report states the verdicts the search stated.
    min_effect: float = DEFAULT_MIN_EFFECT
    # A distortion budget relative to the MSE baseline's mean ("val_psnr >= -0.2", issue 24):
    # the sampler proposes within it and the answer recommends the best w within it.
    constraint: str | None = None
    log_to: list[str] = field(default_factory=list)  # experiment trackers: mlflow, wandb
    mlflow_uri: str | None = None  # None: mlruns/ beside the search directories
    mock: bool = False
    mock_curve: str = "known"  # --mock: "known" (the sharp known optimum), a tune_vqvae.curves
    # name (realistic, no_gain) or module:function
    smoke: bool = False
    # Test support (tune_vqvae.train.faults.inject_faults), never set by users: kept in the
    # settings so that a resumed test search injects the same faults.
    faults: dict | list | None = None

    def check_confirm_budget(self) -> None:
        """0, or a budget that pays for the race's first look (one candidate per loss and the
        baseline's runs a round), and whose most rounds stay within `MAX_RACE_ROUNDS`; the
        default (None) becomes `default_budget` here once the losses are known."""
        b = self.race_baseline_runs
        if b < 1:
            raise UserError(f"--race-baseline-runs must be >= 1, got {b}")
        if self.confirm_budget is None:
            if not self.losses:  # from a space file: `resolve_spaces` checks again
                return
            self.confirm_budget = default_budget(len(self.losses), b)
        if self.confirm_budget == 0:
            if b != 1:
                raise UserError("--race-baseline-runs applies to the sequential confirmation, and "
                                "this search has the fixed stage (--confirm-seeds N, --confirm-budget 0, "
                                "or a search saved before the race): add --confirm-budget N, or drop "
                                "--race-baseline-runs")
            return
        m = max(1, len(self.losses))
        least = least_budget(m, b)
        if self.confirm_budget < least:
            baseline = "the MSE baseline" + (f" ({b} runs a round)" if b > 1 else "")
            raise UserError(f"--confirm-budget {self.confirm_budget} cannot pay for the first look: "
                            f"{FIRST_LOOK} rounds of {baseline} and each loss's recommended w "
                            f"need at least {least} runs; give --confirm-budget "
                            f"{least} or more, or 0 (the fixed --confirm-seeds stage)")
        if max_rounds(self.confirm_budget, m, b) > MAX_RACE_ROUNDS:
            raise UserError(f"--confirm-budget {self.confirm_budget} allows more than {MAX_RACE_ROUNDS} "
                            f"rounds; give at most {MAX_RACE_ROUNDS * round_cost(m, b)}")

    def check_front(self) -> None:
        """Two objectives: two known, different ones, and no ASHA (it judges runs on the first
        objective alone, so it would stop the w that are good on the second)."""
        objectives.pair([self.objective, self.trade_off])  # known, different: else exit 2
        if self.early_stop:
            raise UserError("--early-stop with two --objective: ASHA stops runs on the first objective "
                            "alone, which cuts the front short; drop --early-stop")

    def validate(self) -> None:
        if self.lpips_weights:  # before the losses check LPIPS's weights
            lpips.use_weights_dir(self.lpips_weights)
        for name in self.losses:
            if name == "mse":
                raise UserError("--loss mse: the plain-MSE baseline runs in every search; "
                                f"pick a perceptual loss: {', '.join(PERCEPTUAL_LOSSES)} or all")
            find_metrics(name)  # unknown names (a joint one's parts), bad plugins, LPIPS weights: exit 2
        for key in ("num_samples", "epochs", "max_concurrent", "eval_every", "fid_samples",
                    "val_images", "batch_size", "hidden", "codebook_size"):
            if getattr(self, key) < 1:
                raise UserError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
        if self.num_samples > MAX_TRIALS:  # search seeds would reach the confirmation's (vocab)
            raise UserError(f"--num-samples must be <= {MAX_TRIALS} per loss, got {self.num_samples}")
        if not self.cpus_per_trial > 0:
            raise UserError(f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise UserError(f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}")
        if 0 < self.holdout < 2 or self.holdout < 0:
            raise UserError(f"--holdout must be 0 (select on test) or >= 2 images (FID/SWD need "
                            f"two), got {self.holdout}")
        if self.max_failures < 0:
            raise UserError(f"--max-failures must be >= 0, got {self.max_failures}")
        if self.seeds < 0:
            raise UserError(f"--seeds must be >= 0, got {self.seeds}")
        for key in ("replicates", "baseline_seeds"):
            if getattr(self, key) < 1:
                raise UserError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
        if self.confirm_seeds < 0:
            raise UserError(f"--confirm-seeds must be >= 0 (0: no confirmation stage), "
                            f"got {self.confirm_seeds}")
        if self.confirm_seeds == 1:  # refused before any run is spent
            raise UserError("--confirm-seeds 1: one run per candidate and one baseline run on its "
                            "seed give no interval, so no verdict; use --confirm-seeds 2 or more, "
                            "or 0 (no confirmation stage)")
        self.check_confirm_budget()
        if self.constraint is not None:
            self.constraint = str(constraints.parse(self.constraint))  # bad: one line, exit 2
        if not (self.min_effect > 0 and math.isfinite(self.min_effect)):
            raise UserError(f"--min-effect must be a percentage > 0 of the MSE baseline's mean "
                            f"(the equivalence margin), got {self.min_effect:g}")
        if self.mock_curve != "known":
            if not self.mock:
                raise UserError("--mock-curve needs --mock (it replaces training by a synthetic curve)")
            load_curve(self.mock_curve)  # UserError if it cannot be loaded
        if self.objective is not None and self.objective not in objectives.OBJECTIVES:
            valid = ", ".join(objectives.OBJECTIVES)
            raise UserError(f"unknown --objective {self.objective!r}; valid: {valid}")
        if self.trade_off is not None:
            self.check_front()
        if self.grace_period is not None:
            if not self.early_stop:
                raise UserError("--grace-period applies to early stopping: add --early-stop")
            if self.grace_period < 1:
                raise UserError(f"--grace-period must be >= 1, got {self.grace_period}")
            if self.grace_period >= self.epochs:
                raise UserError(f"--grace-period {self.grace_period} must be < --epochs "
                                f"{self.epochs}; or leave early stopping off (drop --early-stop)")
        _trackers.check(self.log_to, self.mlflow_uri)
        if self.name is not None and (not self.name or "/" in self.name or self.name.startswith(".")):
            raise UserError(f"--name {self.name!r} must be a plain directory name")

    @property
    def budget(self) -> constraints.Constraint | None:
        """--constraint parsed (validate() checked it), None without one."""
        return None if self.constraint is None else constraints.parse(self.constraint)

    @property
    def grace(self) -> int:
        return self.grace_period or max(1, self.epochs // 3)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        # a search.json from before the race (2026-11-30) has no confirm_budget: its fixed stage
        return cls(**{"confirm_budget": 0, **{k: v for k, v in d.items() if k in known}})


def whole(flag: str, text: str) -> int:
    """A flag's whole number read by us, not argparse: a bad one is one line and exit 2."""
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{flag} must be a whole number, got {text!r}") from None


def number(flag: str, text: str) -> float:
    """A flag's number read by us, not argparse: a bad one is one line and exit 2 (UserError)."""
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{flag} must be a number, got {text!r}") from None


def resolve_spaces(cfg: SearchConfig) -> dict[str, SearchSpace]:
    if cfg.space:
        space = load_space(cfg.space)
        if not cfg.losses:
            cfg.losses = list(space.losses)
        for name in cfg.losses:
            if name not in space.losses:
                raise UserError(f"search space {cfg.space}: key 'losses' does not list --loss {name}; "
                                f"add it there or use search_spaces/{name}.yaml")
        spaces = {name: space for name in cfg.losses}
        cfg.check_confirm_budget()  # the default race's budget needs the losses
    else:
        if not cfg.losses:
            raise UserError("no loss to search: give --loss NAME (repeatable) or --loss all")
        spaces = {name: space_for(name) for name in cfg.losses}
    for name, space in spaces.items():
        if not space.grid and cfg.num_samples < len(space.points):
            raise UserError(f"--num-samples {cfg.num_samples} is fewer than the {len(space.points)} "
                            f"points of {space.path}; raise it")
    return spaces


def train_config_dict(cfg: SearchConfig) -> dict:
    """The TrainConfig of every trial, as a dict (the loss is set per trial)."""
    data_source = cfg.data
    if cfg.data not in ("builtin", "cifar10"):  # absolute: trials run in other directories
        data_source = str(Path(cfg.data).expanduser().resolve())
    tc = TrainConfig(
        model=ModelConfig(hidden=cfg.hidden, codebook_size=cfg.codebook_size),
        loss=LossConfig(),
        data=DataConfig(source=data_source, train_images=cfg.train_images,
                        test_images=cfg.test_images, builtin_train=cfg.builtin_train,
                        builtin_test=cfg.builtin_test, holdout=cfg.holdout),  # one dataset for every --seed
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
        val_images=cfg.val_images,
    )
    return dataclasses.asdict(tc)


def resolve_objective(cfg: SearchConfig, saved: bool = False) -> tuple[str, dict, str]:
    """(objective, FIDConfig dict for the trials, a sentence saying why); `saved`: cfg is a
    resumed search's settings, whose objective is the one it resolved when it started."""
    fid = FIDConfig(samples=cfg.fid_samples, weights_path=cfg.fid_weights,
                    swd_samples=min(1000, cfg.fid_samples), seed=cfg.seed)
    if cfg.mock:
        return cfg.objective or "swd", dataclasses.asdict(fid), "mock trainable"
    weights = check_fid_weights(fid, download=False)
    objective, why = cfg.objective, "saved with the search" if saved else "--objective"
    if objective is None and cfg.smoke and weights is None:
        objective, why = "swd", "--smoke without FID weights (give --fid-weights): the offline SWD"
    elif objective is None:
        objective, why = "fid", "the default objective"
    inception = [n for n in (objective, cfg.trade_off) if n and objectives.get(n).needs_inception]
    if inception and weights is None:
        weights = require_fid_weights(fid, inception[0].upper())  # tries the download; else exit 2
    if weights:  # a file that is not the weights: exit 2 now, not a failure in every trial
        verify_fid_weights(weights)
    if inception:
        why += f", Inception weights {weights}"
    fid.weights_path = weights
    fid.fid_mode = "required" if weights else "off"
    return objective, dataclasses.asdict(fid), why
