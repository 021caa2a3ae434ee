"""Search the weight w of `mse + w * L` with Optuna, each trial a VQ-VAE run under Ray Tune.

    python -m tune_vqvae.search --loss gmsd               # one loss, a local Ray cluster
    python -m tune_vqvae.search --loss all --address auto # six searches on a running cluster
    python -m tune_vqvae.search --smoke                   # tiny end-to-end demo, CPU, offline

Each loss is its own Ray Tune experiment with its own Optuna study (one journal file for
the search); the experiments run concurrently, sharing the cluster. Every search also
runs one plain-MSE baseline trial, the reference for every comparison.

Search-space files (search_spaces/*.yaml) are validated on load; the keys are:

    losses:   [gmsd]                      losses the file applies to (required)
    w:        {low: 0.001, high: 10, log: true}   the weight's range (required unless grid)
    with_mse: [true, false]               the categorical: mse + w * L, or L alone
    points:   [{with_mse: true, w: 1.0}, {with_mse: false}, ...]  evaluated first
    grid:     false                       true: evaluate exactly `points`, no sampling

The experiment directory <storage-path>/<name>/ holds:

    search.json          the settings of the search (what --resume continues)
    optuna_journal.log   the Optuna studies, one per loss (optuna-dashboard reads it)
    baseline/, <loss>/   the Ray Tune experiments: one directory per trial with its
                         TensorBoard events, progress.csv and checkpoints
    results.csv, results.json   all trials and the best w per loss (written atomically)
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import io
import json
import math
import os
import random
import shutil
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import ray
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from .errors import UserError, atomic_write_text, cli_entry, ensure_writable_dir
from .losses import LOSSES, PERCEPTUAL_LOSSES
from .trainable import (
    MAXIMISE,
    OBJECTIVES,
    TEST_METRICS,
    label,
    mock_trainable,
    test_metric,
    train_vqvae,
)

SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"
JOURNAL_FILE = "optuna_journal.log"
SETTINGS_FILE = "search.json"
BASELINE = "baseline"
SEED = "seed"  # role of the re-runs of the best configs with other seeds (--seeds)
SEEDS_SUFFIX = "-seeds"  # their experiments: baseline-seeds/, <loss>-seeds/
MIN_FREE_BYTES = 64 << 20  # a storage path with less free space is refused up front
PAPER_POINTS = ({"with_mse": True, "w": 1.0}, {"with_mse": True, "w": 0.5},
                {"with_mse": True, "w": 0.25}, {"with_mse": False})


# --- search-space files -------------------------------------------------------------------

SPACE_KEYS = {"losses", "w", "with_mse", "points", "grid"}
W_KEYS = {"low", "high", "log"}
POINT_KEYS = {"with_mse", "w"}


@dataclass
class SearchSpace:
    path: str
    losses: list[str]
    low: float | None = None
    high: float | None = None
    log: bool = True
    with_mse: list[bool] = field(default_factory=lambda: [True, False])
    points: list[dict] = field(default_factory=list)
    grid: bool = False

    def is_point(self, with_mse: bool, w: float | None) -> bool:
        """Whether (with_mse, w) is one of the points evaluated first (the paper's grid)."""
        for p in self.points:
            if bool(p["with_mse"]) != bool(with_mse):
                continue
            if not with_mse or (w is not None and math.isclose(p["w"], w, rel_tol=1e-9)):
                return True
        return False


def _space_error(path, key: str, what: str) -> UserError:
    return UserError(f"search space {path}: key {key!r}: {what}")


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"cannot read search space {path} ({e.strerror}); check --space") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise UserError(f"search space {path} is not valid YAML{at}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise UserError(f"search space {path} must be a mapping of {', '.join(sorted(SPACE_KEYS))}")
    unknown = sorted(set(raw) - SPACE_KEYS)
    if unknown:
        raise _space_error(path, unknown[0], f"unknown key; valid keys: {', '.join(sorted(SPACE_KEYS))}")
    return raw


def _is_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _parse_w(path: Path, w, space: SearchSpace) -> None:
    """The `w: {low, high, log}` range, into space.low/high/log."""
    if not isinstance(w, dict):
        raise _space_error(path, "w", "must be a mapping {low: ..., high: ..., log: true}")
    bad = sorted(set(w) - W_KEYS)
    if bad:
        raise _space_error(path, f"w.{bad[0]}", f"unknown key; valid keys: {', '.join(sorted(W_KEYS))}")
    for key in ("low", "high"):
        if not _is_number(w.get(key)):
            raise _space_error(path, f"w.{key}", f"must be a finite number, got {w.get(key)!r}")
    log = w.get("log", True)
    if not isinstance(log, bool):
        raise _space_error(path, "w.log", f"must be true or false, got {log!r}")
    low, high = float(w["low"]), float(w["high"])
    if low >= high:
        raise _space_error(path, "w", f"low ({low:g}) must be < high ({high:g})")
    if low <= 0:
        raise _space_error(path, "w.low", f"must be > 0 (the loss weight is positive), got {low:g}")
    space.low, space.high, space.log = low, high, log


def _parse_point(path: Path, key: str, p, space: SearchSpace) -> dict:
    """One `points` entry: {with_mse: true, w: 0.5} or {with_mse: false}."""
    if not isinstance(p, dict):
        raise _space_error(path, key, "must be a mapping {with_mse: true, w: 0.5} or {with_mse: false}")
    bad = sorted(set(p) - POINT_KEYS)
    if bad:
        raise _space_error(path, f"{key}.{bad[0]}", "unknown key; valid keys: with_mse, w")
    if not isinstance(p.get("with_mse"), bool):
        raise _space_error(path, f"{key}.with_mse", "must be true or false")
    if p["with_mse"] not in space.with_mse:
        raise _space_error(path, f"{key}.with_mse", f"{p['with_mse']} is not among with_mse {space.with_mse}")
    if not p["with_mse"]:
        if "w" in p:
            raise _space_error(path, f"{key}.w", "a no-MSE point has no weight; remove w")
        return {"with_mse": False}
    v = p.get("w")
    if not _is_number(v) or not v > 0:
        raise _space_error(path, f"{key}.w", f"must be a positive number, got {v!r}")
    if space.low is not None and not space.low <= v <= space.high:
        raise _space_error(path, f"{key}.w", f"{v:g} is outside w [{space.low:g}, {space.high:g}]")
    return {"with_mse": True, "w": float(v)}


def load_space(path: str | os.PathLike) -> SearchSpace:
    """Read and validate a search-space YAML file; errors name the file and the key."""
    path = Path(path)
    raw = _read_yaml(path)
    losses = raw.get("losses")
    if isinstance(losses, str):
        losses = [losses]
    if not isinstance(losses, list) or not losses:
        raise _space_error(path, "losses", "must be a non-empty list of loss names")
    for name in losses:
        if name not in PERCEPTUAL_LOSSES:
            raise _space_error(path, "losses",
                               f"unknown loss {name!r}; valid: {', '.join(PERCEPTUAL_LOSSES)}")
    grid = raw.get("grid", False)
    if not isinstance(grid, bool):
        raise _space_error(path, "grid", f"must be true or false, got {grid!r}")
    with_mse = raw.get("with_mse", [True, False])
    if not isinstance(with_mse, list) or not with_mse or not all(isinstance(c, bool) for c in with_mse) \
            or len(set(with_mse)) != len(with_mse):
        raise _space_error(path, "with_mse", "must be a list of distinct booleans: [true, false]")

    space = SearchSpace(path=str(path), losses=list(losses), with_mse=with_mse, grid=grid)
    if raw.get("w") is not None:
        _parse_w(path, raw["w"], space)
    elif not grid:
        raise _space_error(path, "w", "missing: give {low: ..., high: ..., log: true}")
    points = raw.get("points", [])
    if not isinstance(points, list):
        raise _space_error(path, "points", "must be a list of {with_mse: ..., w: ...}")
    for i, p in enumerate(points):
        point = _parse_point(path, f"points[{i}]", p, space)
        if point in space.points:
            raise _space_error(path, f"points[{i}]", f"duplicate point {point}")
        space.points.append(point)
    if grid and not space.points:
        raise _space_error(path, "points", "a grid needs at least one point")
    return space


def default_space_file(loss: str) -> Path:
    return SPACES_DIR / f"{loss}.yaml"


# --- Optuna: the space, the sampler, the searcher ------------------------------------------

class WeightSpace:
    """Define-by-run space: the categorical with_mse and, for mse + w * L only, w."""

    def __init__(self, space: SearchSpace):
        self.low, self.high, self.log = space.low or 1e-3, space.high or 10.0, space.log
        self.choices = list(space.with_mse)

    def __call__(self, trial) -> None:
        with_mse = trial.suggest_categorical("with_mse", self.choices)
        if with_mse:
            trial.suggest_float("w", self.low, self.high, log=self.log)


class WeightSampler(optuna.samplers.BaseSampler):
    """Gaussian-process Bayesian optimisation of log w, fitted on the mse + w * L trials.

    Why a GP: the space is one continuous dimension (plus the categorical) and the budget
    is tens of trials, each a full training run. TPE samples at random for its first 10
    trials, which is most of such a budget; Optuna's GPSampler models the objective as a
    smooth function of log w and picks each next w by expected improvement from the 3rd
    completed trial on, accounting for the trials still running (so concurrent trials get
    different w).

    Why not GPSampler on the whole space: `w` only exists for with-MSE trials, and the GP
    models only the parameters every trial has, so the no-MSE trials would hide `w` from it
    and it would sample w at random. Here the GP sees exactly the with-MSE trials (running
    ones included). The no-MSE variant has no free parameter: once it has been measured (it
    is one of the paper's points) the categorical chooses "with MSE"; re-running it would
    repeat the same seeded run.
    """

    def __init__(self, seed: int = 0, n_startup_trials: int = 3):
        self.seed = seed
        self.n_startup_trials = n_startup_trials

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
        if param_name == "with_mse":
            choices = list(param_distribution.choices)
            measured_no_mse = any(
                t.params.get("with_mse") is False
                or t.system_attrs.get("fixed_params", {}).get("with_mse") is False
                for t in others if t.state != optuna.trial.TrialState.FAIL
            )
            if True in choices and (measured_no_mse or len(choices) == 1):
                return True
            return random.Random(self.seed * 7919 + trial.number).choice(choices)
        if param_name != "w":
            raise ValueError(f"WeightSampler knows only with_mse and w, not {param_name!r}")
        return self._sample_w(study, trial, others, param_distribution)

    def _sample_w(self, study, trial, others, dist):
        states = optuna.trial.TrialState
        shadow = optuna.create_study(
            direction=study.direction,
            sampler=optuna.samplers.GPSampler(
                seed=self.seed * 7919 + trial.number,
                n_startup_trials=self.n_startup_trials,
                warn_independent_sampling=False,
            ),
        )
        for t in others:
            if "w" not in t.params or t.params.get("with_mse") is not True:
                continue
            if t.state == states.COMPLETE and t.value is not None and math.isfinite(t.value):
                shadow.add_trial(optuna.trial.create_trial(
                    params={"w": t.params["w"]}, distributions={"w": dist}, value=t.value))
            elif t.state == states.RUNNING:
                shadow.add_trial(optuna.trial.create_trial(
                    state=states.RUNNING, params={"w": t.params["w"]}, distributions={"w": dist}))
        return shadow.ask({"w": dist}).params["w"]


class WeightSearch(OptunaSearch):
    """OptunaSearch that marks diverged trials FAIL (not scored) and names the Ray trial."""

    def suggest(self, trial_id):
        params = super().suggest(trial_id)
        if params is not None:
            self._ot_trials[trial_id].set_user_attr("ray_trial_id", trial_id)
        return params

    def restore(self, checkpoint_path):
        """Restore from the experiment's last snapshot, then reconcile it with the journal,
        which is newer when the driver was killed (kill -9, a lost head node):

        - a trial the snapshot has as running but the journal as finished completed after
          the snapshot: Tune re-runs its last epochs from its checkpoint; the journal keeps
          its (identical, seeded) result and the repeated reports are ignored;
        - a journal trial still RUNNING that no Tune trial of the snapshot owns was asked
          after the snapshot: no trial will ever report it, so it is marked FAIL (user attr
          `orphaned`) instead of staying RUNNING, which the GP would take as a pending w.
        """
        super().restore(checkpoint_path)
        trials = {t.number: t for t in self._ot_study.get_trials(deepcopy=False)}
        owned = set()
        for trial_id, ot_trial in self._ot_trials.items():
            owned.add(ot_trial.number)
            frozen = trials.get(ot_trial.number)
            if frozen is not None and frozen.state.is_finished():
                self._completed_trials.add(trial_id)
        for number, t in trials.items():
            if t.state == optuna.trial.TrialState.RUNNING and number not in owned:
                self._ot_study._storage.set_trial_user_attr(
                    t._trial_id, "orphaned", "asked just before the search driver died; "
                    "no trial ran it")
                self._ot_study.tell(number, state=optuna.trial.TrialState.FAIL)

    def on_trial_result(self, trial_id, result):
        value = result.get(self.metric)
        if result.get("diverged") or value is None or not math.isfinite(value) \
                or trial_id in self._completed_trials:
            return
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id, result=None, error=False):
        if trial_id in self._completed_trials:  # told already (e.g. before a driver restart)
            return
        if trial_id in self._ot_trials and result and result.get("diverged"):
            ot_trial = self._ot_trials[trial_id]
            ot_trial.set_user_attr("diverged_at_epoch", int(result.get("epoch", 0)))
            ot_trial.set_user_attr("error", str(result.get("error", "diverged")))
            self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
            self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, result=result, error=error)


class ProtectedASHA(ASHAScheduler):
    """ASHA that records every trial at its rungs but never stops the reference points
    (the paper's grid and the baseline): they always train all epochs, so the gains of
    the best w over them compare runs of equal length."""

    def __init__(self, space: SearchSpace, **kwargs):
        super().__init__(**kwargs)
        self.space = space

    def protects(self, config: dict) -> bool:
        return config.get("role") == BASELINE or self.space.is_point(
            config.get("with_mse", True), config.get("w"))

    def on_trial_result(self, tune_controller, trial, result):
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP and self.protects(trial.config) \
                and result.get(self._time_attr, 0) < self._max_t:
            self._num_stopped -= 1
            return TrialScheduler.CONTINUE
        return action


# --- progress output -------------------------------------------------------------------

_print_lock = threading.Lock()


def say(*parts) -> None:
    with _print_lock:
        print(*parts, flush=True)


# experiment name -> set once its Tune loop is set up (see run_experiments)
_set_up: dict[str, threading.Event] = {}


class Progress(tune.Callback):
    """One line per reported epoch and per finished trial, prefixed by the experiment."""

    def __init__(self, experiment: str, epochs: int, objective: str):
        self.experiment, self.epochs, self.objective = experiment, epochs, objective

    def setup(self, **info):
        event = _set_up.get(self.experiment)
        if event is not None:
            event.set()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("diverged"):
            say(f"[{self.experiment}] {trial.trial_id} {label(trial.config)}: DIVERGED at epoch "
                f"{int(result.get('epoch', 0))}: {result.get('error', '')}")
            return
        say(f"[{self.experiment}] {trial.trial_id} {label(trial.config)}: epoch "
            f"{int(result.get('epoch', 0))}/{self.epochs}  {self.objective} "
            f"{_metric_of(result, self.objective):.4g}  val_psnr {result.get('val_psnr', float('nan')):.2f}")

    def on_trial_error(self, iteration, trials, trial, **info):
        say(f"[{self.experiment}] {trial.trial_id} {label(trial.config)}: ERROR "
            f"(attempt {trial.num_failures}): {str(trial.error_file or '')}")


def _metric_of(result: dict, objective: str) -> float:
    value = result.get(objective)
    if value is None:
        value = result.get("objective", float("nan"))
        return -value if objective in MAXIMISE else value
    return value


def trial_dirname(trial) -> str:
    c = trial.config
    if c.get("role") == BASELINE:
        tag = "mse"
    elif c.get("with_mse", True):
        tag = f"w{c.get('w'):.4g}" if c.get("w") is not None else "w"
    else:
        tag = "nomse"
    return f"{trial.trial_id}_{tag}"


# --- settings ------------------------------------------------------------------------------

@dataclass
class SearchConfig:
    losses: list[str]
    space: str | None = None  # one file for all losses; None: search_spaces/<loss>.yaml
    num_samples: int = 20  # Optuna trials per loss, the points included (+1 baseline)
    epochs: int = 10
    max_concurrent: int = 4  # per loss experiment
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 1 when the cluster has GPUs, else 0
    data: str = "builtin"
    train_images: int | None = None
    test_images: int | None = None
    builtin_train: int = 10_000
    builtin_test: int = 2_000
    val_images: int = 1000
    holdout: int = 0  # > 0: select on the last N training images, score the winners on test
    batch_size: int = 128
    lr: float = 2e-4
    hidden: int = 256
    codebook_size: int = 512
    objective: str | None = None  # None: fid when its weights are found, else swd
    fid_weights: str | None = None
    fid_samples: int = 10_000
    eval_every: int = 1
    storage_path: str = "runs/search"
    name: str | None = None
    seed: int = 0
    early_stop: bool = True
    grace_period: int | None = None  # None: max(1, epochs // 3)
    max_failures: int = 2
    seeds: int = 0  # after the search: re-run each loss's best config and the baseline N times
    mock: bool = False
    smoke: bool = False
    faults: dict | None = None  # fault injection (tests only)

    def validate(self) -> None:
        for name in self.losses:
            if name == "mse":
                raise UserError("--loss mse: the plain-MSE baseline runs in every search; "
                                f"pick a perceptual loss: {', '.join(PERCEPTUAL_LOSSES)} or all")
            if name not in LOSSES:
                raise UserError(f"unknown loss {name!r}; valid: {', '.join(PERCEPTUAL_LOSSES)} or all")
        for key in ("num_samples", "epochs", "max_concurrent", "eval_every", "fid_samples",
                    "val_images", "batch_size", "hidden", "codebook_size"):
            if getattr(self, key) < 1:
                raise UserError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
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
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise UserError(f"unknown --objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
        if self.grace_period is not None and self.early_stop:
            if self.grace_period < 1:
                raise UserError(f"--grace-period must be >= 1, got {self.grace_period}")
            if self.grace_period >= self.epochs:
                raise UserError(f"--grace-period {self.grace_period} must be < --epochs "
                                f"{self.epochs}; or turn early stopping off with --no-early-stop")
        if self.name is not None and (not self.name or "/" in self.name or self.name.startswith(".")):
            raise UserError(f"--name {self.name!r} must be a plain directory name")

    @property
    def grace(self) -> int:
        return self.grace_period or max(1, self.epochs // 3)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def smoke_settings(a: argparse.Namespace) -> None:
    """--smoke: tiny model, few images, few trials and epochs, offline built-in data."""
    defaults = dict(loss=["gmsd"], num_samples=8, epochs=4, hidden=16, codebook_size=32,
                    builtin_train=2048, builtin_test=256, holdout=256, val_images=128, batch_size=32,
                    fid_samples=128, max_concurrent=2, grace_period=2, data="builtin",
                    name=f"smoke-{time.strftime('%Y%m%d-%H%M%S')}")
    for key, value in defaults.items():
        if getattr(a, key, None) is None:
            setattr(a, key, value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tune_vqvae.search",
                                description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = SearchConfig(losses=[])
    p.add_argument("--loss", action="append", help=f"loss to search (repeatable), or all: "
                   f"{', '.join(PERCEPTUAL_LOSSES)}; default: the --space file's losses")
    p.add_argument("--space", help="search-space YAML for all losses (default: "
                   "search_spaces/<loss>.yaml; search_spaces/paper_grid.yaml = the paper's grid)")
    p.add_argument("--num-samples", type=int, help=f"Optuna trials per loss incl. the paper points "
                   f"(default {d.num_samples}); one MSE baseline trial runs in addition")
    p.add_argument("--epochs", type=int, help=f"epochs per trial (default {d.epochs})")
    p.add_argument("--max-concurrent", type=int,
                   help=f"running trials per loss at most (default {d.max_concurrent})")
    p.add_argument("--cpus-per-trial", type=float, help=f"default {d.cpus_per_trial:g}")
    p.add_argument("--gpus-per-trial", type=float,
                   help="fractional packs trials on a GPU, e.g. 0.25 "
                   "(default: 1 if the cluster has GPUs, else 0)")
    p.add_argument("--data", help="builtin (offline default) | cifar10 | FILE.npz")
    p.add_argument("--train-images", type=int, help="use the first N training images")
    p.add_argument("--val-images", type=int, help=f"held-out images for val metrics (default {d.val_images})")
    p.add_argument("--holdout", type=int,
                   help="select w on the last N training images (not trained on) and report the "
                   "test split's scores of every finished trial as test_<objective> "
                   "(default 0: select on the test images, the paper's protocol)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--hidden", type=int, help=f"model width (default {d.hidden})")
    p.add_argument("--codebook-size", type=int, help=f"default {d.codebook_size}")
    p.add_argument("--objective", help=f"metric to minimise: {', '.join(OBJECTIVES)} (PSNR/SSIM "
                   "are maximised); default fid (needs its weights; --smoke falls back to swd)")
    p.add_argument("--fid-weights",
                   help="Inception weights file for FID (pt_inception-2015-12-05-6726825d.pth)")
    p.add_argument("--fid-samples", type=int, help=f"images scored by FID/SWD: of the test split, or of "
                   f"the --holdout (default {d.fid_samples})")
    p.add_argument("--eval-every", type=int, help="FID/SWD every N epochs and at the last (default 1)")
    p.add_argument("--storage-path",
                   help=f"where experiments go: a dir, NFS, or s3://... (default {d.storage_path})")
    p.add_argument("--name", help="experiment name (default <losses>-<time>)")
    p.add_argument("--resume", nargs="?", const=True, metavar="DIR",
                   help="continue an interrupted search: DIR, or --storage-path/--name; "
                   "its saved settings are used")
    p.add_argument("--seed", type=int, help="seed of the training runs and of the sampler")
    p.add_argument("--address", help="Ray cluster to use (host:port, ray://host:10001 or auto); "
                   "default: start a local one")
    p.add_argument("--no-early-stop", dest="early_stop", action="store_false", default=None,
                   help="no ASHA early stopping")
    p.add_argument("--grace-period", type=int,
                   help="epochs before ASHA may stop a trial (default epochs // 3)")
    p.add_argument("--max-failures", type=int,
                   help=f"retries of a crashed trial from its last checkpoint (default {d.max_failures})")
    p.add_argument("--seeds", type=int,
                   help="after the search, re-run the best config of each loss and the MSE "
                   "baseline N more times with seeds --seed+1..--seed+N (mean ± std in the "
                   "report); with --resume DIR, adds them to a finished search")
    p.add_argument("--smoke", action="store_true",
                   help="tiny end-to-end search on the built-in data, CPU, < 3 min")
    p.add_argument("--mock", action="store_true", help="mock trainable (tests of the search machinery)")
    p.add_argument("--faults", help=argparse.SUPPRESS)  # JSON fault injection, tests only
    p.add_argument("--num-cpus", type=int, help=argparse.SUPPRESS)  # local cluster size (tests)
    return p


def config_from_args(a: argparse.Namespace) -> SearchConfig:
    if a.smoke:
        smoke_settings(a)
    losses: list[str] = []
    for name in a.loss or []:
        losses.extend(PERCEPTUAL_LOSSES if name == "all" else [name])
    values = {k: v for k, v in vars(a).items() if v is not None and k in
              {f.name for f in dataclasses.fields(SearchConfig)}}
    values["losses"] = list(dict.fromkeys(losses))
    if a.faults:
        try:
            values["faults"] = json.loads(a.faults)
        except json.JSONDecodeError as e:
            raise UserError(f"--faults is not JSON ({e})") from None
    return SearchConfig(**values)


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
    else:
        if not cfg.losses:
            raise UserError("no loss to search: give --loss NAME (repeatable) or --loss all")
        spaces = {name: load_space(default_space_file(name)) for name in cfg.losses}
    for name, space in spaces.items():
        if not space.grid and cfg.num_samples < len(space.points):
            raise UserError(f"--num-samples {cfg.num_samples} is fewer than the {len(space.points)} "
                            f"points of {space.path}; raise it")
    return spaces


# --- experiment directory, storage, cluster ----------------------------------------------

def is_uri(path: str) -> bool:
    return "://" in str(path)


class Layout:
    """Where a search's files go. For s3:// (or any URI) storage the search-level files
    live in a local directory on the driver and are uploaded next to the experiments."""

    def __init__(self, storage_path: str, name: str):
        self.name = name
        if is_uri(storage_path):
            self.storage = storage_path.rstrip("/") + "/" + name  # Tune's storage_path
            self.local = Path("~/.cache/tune_vqvae/searches").expanduser() / name
        else:
            self.storage = str(Path(storage_path).expanduser().resolve() / name)
            self.local = Path(self.storage)

    def experiment(self, exp: str) -> str:
        return f"{self.storage}/{exp}"

    def check_writable(self) -> None:
        existing = next(p for p in (self.local, *self.local.parents) if p.exists())
        free = shutil.disk_usage(existing).free  # before creating anything there
        if free < MIN_FREE_BYTES:
            raise UserError(f"storage path {str(self.local)!r} is full ({free >> 20} MiB free, "
                            f"a search needs at least {MIN_FREE_BYTES >> 20} MiB); free space "
                            f"or choose another --storage-path")
        ensure_writable_dir(self.local, "storage path")
        if is_uri(self.storage):
            import pyarrow.fs

            try:
                fs, path = pyarrow.fs.FileSystem.from_uri(self.storage)
                fs.create_dir(path)
                with fs.open_output_stream(f"{path}/.write-test"):
                    pass
            except Exception as e:  # pyarrow raises OSError/ArrowInvalid/... per backend
                raise UserError(f"storage path {self.storage!r} is not writable ({e}); "
                                f"check the URI and credentials") from None

    def upload(self, files: list[str]) -> None:
        if not is_uri(self.storage):
            return
        import pyarrow.fs

        fs, path = pyarrow.fs.FileSystem.from_uri(self.storage)
        for f in files:
            if (self.local / f).exists():
                pyarrow.fs.copy_files(str(self.local / f), f"{path}/{f}", destination_filesystem=fs)


def check_address(address: str) -> None:
    """An unreachable --address is a UserError now, not a hang or a traceback later."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    try:
        port_n = int(port)
        if not host:
            raise ValueError
    except ValueError:
        raise UserError(f"--address {address!r}: expected host:port (e.g. 10.0.0.1:6379) or auto") from None
    try:
        with socket.create_connection((host or "127.0.0.1", port_n), timeout=5):
            pass
    except OSError as e:
        raise UserError(f"--address {address}: cannot reach the Ray cluster ({e.strerror or e}); "
                        "check `ray status` on the head node, or drop --address for a local cluster"
                        ) from None


def quiet_console() -> None:
    """Our Progress callback prints one line per epoch; silence the chatter around it."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # The GP fit runs inside the define-by-run space function (it samples w), not training.
    warnings.filterwarnings("ignore", message="Define-by-run function passed")
    # Tune snapshots the experiment at every checkpoint when num_to_keep is set: wanted
    # (a killed driver loses nothing), so its "may become a bottleneck" warning is noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's newer console output prints per-experiment banners (and a TensorBoard hint
    # pointing at a staging dir); the classic reporter with verbose=0 prints nothing.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def connect(address: str | None, num_cpus: int | None) -> bool:
    """Connect to the cluster, or start a local one. Returns whether we started Ray."""
    if address:
        check_address(address)
    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"--address {address}: cannot connect to Ray ({first}); "
                            f"is `ray start --head` running there?") from None
        return True
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local cluster on 127.0.0.1
    ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="WARNING", configure_logging=True)
    return True


# --- trial configs and experiments -------------------------------------------------------

def train_config_dict(cfg: SearchConfig) -> dict:
    from .data import DataConfig
    from .losses import LossConfig
    from .model import ModelConfig
    from .train import TrainConfig

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


def resolve_objective(cfg: SearchConfig) -> tuple[str, dict, str]:
    """(objective, FIDConfig dict for the trials, a sentence saying why)."""
    from .fid import FIDConfig, check_fid_weights, require_fid_weights

    fid = FIDConfig(samples=cfg.fid_samples, weights_path=cfg.fid_weights,
                    swd_samples=min(1000, cfg.fid_samples), seed=cfg.seed)
    if cfg.mock:
        return cfg.objective or "swd", dataclasses.asdict(fid), "mock trainable"
    weights = check_fid_weights(fid, download=False)
    objective, why = cfg.objective, "--objective"
    if objective is None and cfg.smoke and weights is None:
        objective, why = "swd", "--smoke without FID weights (give --fid-weights): the offline SWD"
    elif objective is None:
        objective, why = "fid", "the default objective"
    if objective == "fid" and weights is None:
        weights = require_fid_weights(fid)  # tries the download; UserError (exit 2) if it fails
    if objective == "fid":
        why += f", Inception weights {weights}"
    fid.weights_path = weights
    fid.fid_mode = "required" if weights else "off"
    return objective, dataclasses.asdict(fid), why


def trainable_for(cfg: SearchConfig, data_ref):
    fn = mock_trainable if cfg.mock else train_vqvae
    resources = {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial or 0}
    return tune.with_resources(tune.with_parameters(fn, data=[data_ref]), resources)


def run_config(cfg: SearchConfig, layout: Layout, exp: str, objective: str) -> tune.RunConfig:
    return tune.RunConfig(
        name=exp,
        storage_path=layout.storage,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
        sync_config=tune.SyncConfig(sync_artifacts=True),  # TensorBoard events of every trial
        verbose=0,
        callbacks=[Progress(exp, cfg.epochs, objective)],
    )


def build_tuner(cfg, layout, exp, space, base_config, trainable, objective, journal):
    """A fresh Tuner for one experiment: the baseline (space None) or a loss search."""
    if space is None:
        return tune.Tuner(
            trainable,
            param_space={**base_config, "role": BASELINE, "loss": "mse"},
            tune_config=tune.TuneConfig(metric="objective", mode="min", num_samples=1,
                                        trial_dirname_creator=trial_dirname),
            run_config=run_config(cfg, layout, exp, objective),
        )
    searcher = WeightSearch(
        space=WeightSpace(space), metric="objective", mode="min",
        points_to_evaluate=[dict(p) for p in space.points],
        sampler=WeightSampler(seed=cfg.seed), study_name=exp, storage=journal,
    )
    scheduler = None
    if cfg.early_stop and not space.grid and cfg.epochs > 1:
        scheduler = ProtectedASHA(space, time_attr="epoch", max_t=cfg.epochs,
                                  grace_period=cfg.grace, reduction_factor=3)
    return tune.Tuner(
        trainable,
        param_space={**base_config, "role": "search", "loss": exp},
        tune_config=tune.TuneConfig(
            metric="objective", mode="min", search_alg=searcher, scheduler=scheduler,
            num_samples=len(space.points) if space.grid else cfg.num_samples,
            max_concurrent_trials=cfg.max_concurrent, reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=run_config(cfg, layout, exp, objective),
    )


def seed_experiments(cfg, layout, resume, summary, base_config, trainable) -> dict:
    """--seeds N: jobs re-running the MSE baseline and each loss's best config with the
    seeds cfg.seed+1 .. cfg.seed+N (a grid over train.seed), each an experiment of its own
    (baseline-seeds/, <loss>-seeds/) in the search directory, resumable like the others."""
    seeds = [cfg.seed + k for k in range(1, cfg.seeds + 1)]
    train = {**base_config["train"], "seed": tune.grid_search(seeds)}
    points = {BASELINE: {"role": BASELINE, "loss": "mse"}}
    for loss in cfg.losses:
        best = (summary.get(loss) or {}).get("best")
        if best is None:
            say(f"[{loss}] no completed trial: no seed re-runs")
            continue
        points[loss] = {"role": "search", "loss": loss, "with_mse": best["with_mse"], "w": best["w"]}
    say(f"re-running {', '.join(label(p) for p in points.values())} with seeds "
        f"{', '.join(map(str, seeds))}")

    def job(exp, point):
        def build():
            return tune.Tuner(
                trainable, param_space={**base_config, **point, "train": train},
                tune_config=tune.TuneConfig(
                    metric="objective", mode="min", num_samples=1,
                    max_concurrent_trials=cfg.max_concurrent, trial_dirname_creator=trial_dirname),
                run_config=run_config(cfg, layout, exp, base_config["objective"]),
            )
        return lambda: restore_or_build(layout.experiment(exp), trainable, resume, build).fit()

    return {exp + SEEDS_SUFFIX: job(exp + SEEDS_SUFFIX, point) for exp, point in points.items()}


def restore_or_build(path: str, trainable, resume: bool, build) -> tune.Tuner:
    """The experiment at `path` restored (an interrupted search goes on), else a new one."""
    if resume and tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                  resume_errored=True)
    return build()


def journal_storage(path: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


_interrupted = threading.Event()


def _graceful_interrupts() -> None:
    """Let Ctrl-C stop the Tune loops running in our threads the way Tune stops its own.

    Tune installs its SIGINT handler (which ends the loop after a last experiment
    snapshot, so a resumed search re-runs nothing that finished) only in the main
    thread. Our experiments run in threads, so we hand their loops our own event, set on
    Ctrl-C. If a future Ray renames this private hook, Ctrl-C still works, only without
    the last snapshot (resume then repeats at most the epochs since the previous one).
    """
    import ray.tune.tune as tune_module

    original = getattr(tune_module, "_setup_signal_catching", None)
    if original is None or getattr(original, "tune_vqvae", False):
        return

    def setup_signal_catching():
        if threading.current_thread() is threading.main_thread():
            return original()
        return _interrupted

    setup_signal_catching.tune_vqvae = True
    tune_module._setup_signal_catching = setup_signal_catching


def run_experiments(jobs: dict) -> dict:
    """Run {name: callable -> ResultGrid} concurrently (one thread each: Tune drives a
    trial loop per experiment; Ray shares the cluster among them)."""
    results, errors = {}, {}
    _interrupted.clear()
    _graceful_interrupts()

    def work(name, fn):
        try:
            results[name] = fn()
        except BaseException as e:  # re-raised below, in the main thread
            errors[name] = e

    # Tune's setup (registering the trainable in Ray's global registry) is not thread-safe:
    # start the next experiment only once the previous one's loop is set up (its Progress
    # callback's `setup`); from then on they run concurrently.
    threads = []
    try:
        for name, fn in jobs.items():
            _set_up[name] = threading.Event()
            t = threading.Thread(target=work, args=(name, fn), name=f"tune-{name}", daemon=True)
            t.start()
            threads.append(t)
            while t.is_alive() and not _set_up[name].wait(0.2):
                pass
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        say("interrupted: saving the experiment state (Ctrl-C again to quit at once); "
            "continue with --resume")
        _interrupted.set()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
        raise
    for name, e in errors.items():
        if isinstance(e, (OSError, UserError)):  # e.g. a full disk: main turns it into exit 2
            raise e
        raise RuntimeError(f"experiment {name} failed: {e}") from e
    return results


# --- results -------------------------------------------------------------------------------

ROW_METRICS = ("fid", "swd", "val_mse", "val_psnr", "val_ssim", "perplexity", "codes_used",
               "images_per_s", "step_ms", "recon_loss_ms", *TEST_METRICS)


def _statuses(grid) -> dict:
    try:
        return {t.trial_id: t.status for t in grid._experiment_analysis.trials}
    except AttributeError:
        return {}


def collect_rows(exp: str, grid, cfg: SearchConfig, space: SearchSpace | None, objective: str,
                 seeds: bool = False):
    statuses = _statuses(grid)
    rows = []
    for r in grid:
        c, m = r.config or {}, r.metrics or {}
        trial_id = m.get("trial_id") or os.path.basename(str(r.path)).split("_")[0]
        epoch = int(m.get("epoch", 0) or 0)
        if c.get("role") == BASELINE:
            role, mode, w = BASELINE, "mse", None
        else:
            with_mse, w = c.get("with_mse", True), c.get("w")
            role = "paper" if space is not None and space.is_point(with_mse, w) else "search"
            loss = c.get("loss", exp)
            mode = f"mse+w*{loss}" if with_mse else f"{loss} alone"
            w = w if with_mse else None
        if seeds:
            role = SEED
        status = statuses.get(trial_id, "TERMINATED")
        if r.error is not None or status == "ERROR":
            status = "ERROR"
        elif m.get("diverged"):
            status = "DIVERGED"
        elif status == "TERMINATED":
            status = "COMPLETED" if epoch >= cfg.epochs else "STOPPED"
        value = _metric_of(m, objective) if m and not m.get("diverged") else float("nan")
        row = {"loss": c.get("loss", exp) if c.get("role") != BASELINE else "mse",
               "experiment": exp, "role": role,
               "mode": mode, "with_mse": c.get("with_mse", True) if role != BASELINE else True,
               "w": w, "objective": objective, "value": value, "test_value": m.get(test_metric(objective)),
               "status": status, "epochs": epoch,
               "trial_id": trial_id, "seed": (c.get("train") or {}).get("seed")}
        row.update({k: m.get(k) for k in ROW_METRICS})
        row["node_id"] = m.get("node_id")
        row["error"] = (str(r.error).strip().splitlines() or [""])[-1][:200] if r.error else \
            (m.get("error") if m.get("diverged") else None)
        row["path"] = str(r.path)
        rows.append(row)
    order = {BASELINE: 0, "paper": 1, "search": 2, SEED: 3}
    rows.sort(key=lambda r: (order[r["role"]], r["w"] is not None, r["w"] or 0, r["seed"] or 0))
    return rows


def _ok(row) -> bool:
    return row["status"] == "COMPLETED" and row["value"] is not None and math.isfinite(row["value"])


def _gain(reference: float | None, best: float, objective: str) -> dict | None:
    """How much better `best` is than `reference`: positive = better (in the metric's sense)."""
    if reference is None:
        return None
    better = (best - reference) if objective in MAXIMISE else (reference - best)
    return {"reference": reference, "absolute": better,
            "percent": 100 * better / abs(reference) if reference else None}


def summarise(rows: list[dict], losses: list[str], objective: str) -> dict:
    pick = max if objective in MAXIMISE else min
    base = [r for r in rows if r["role"] == BASELINE and _ok(r)]
    baseline = base[0]["value"] if base else None
    baseline_test = base[0]["test_value"] if base else None
    out = {}
    for loss in losses:
        mine = [r for r in rows if r["experiment"] == loss and _ok(r)]
        if not mine:
            out[loss] = {"best": None, "note": "no completed trial"}
            continue
        best = pick(mine, key=lambda r: r["value"])
        paper = [r for r in mine if r["role"] == "paper"]
        best_paper = pick(paper, key=lambda r: r["value"]) if paper else None
        out[loss] = {
            "best": {"with_mse": best["with_mse"], "w": best["w"], "mode": best["mode"],
                     "value": best["value"], "test_value": best["test_value"],
                     "trial_id": best["trial_id"], "role": best["role"]},
            "baseline": baseline,
            "gain_vs_baseline": _gain(baseline, best["value"], objective),
            # With --holdout: the same comparison on the test split, which selection never saw.
            "baseline_test": baseline_test,
            "gain_vs_baseline_test": None if best["test_value"] is None else
            _gain(baseline_test, best["test_value"], objective),
            "best_paper_point": None if best_paper is None else
            {"with_mse": best_paper["with_mse"], "w": best_paper["w"], "value": best_paper["value"]},
            "gain_vs_paper": None if best_paper is None else
            _gain(best_paper["value"], best["value"], objective),
            "trials": sum(r["experiment"] == loss for r in rows),
            "completed": len(mine),
            "stopped_early": sum(r["experiment"] == loss and r["status"] == "STOPPED" for r in rows),
            "failed": sum(r["experiment"] == loss and r["status"] in ("ERROR", "DIVERGED") for r in rows),
        }
    return out


def _fmt(v, spec=".4g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def _point(p: dict) -> str:
    return f"w={p['w']:.4g}" if p["with_mse"] else "no MSE"


def _vs(gain: dict | None, name: str) -> str:
    if not gain:
        return ""
    text = f"; vs {name} {_fmt(gain['reference'])}: {_fmt(gain['absolute'], '+.4g')}"
    return text + (f" ({gain['percent']:+.1f}%)" if gain["percent"] is not None else "")


def format_table(rows: list[dict], summary: dict, objective: str) -> str:
    test = any(r.get("test_value") is not None for r in rows)
    test_head = f" {test_metric(objective):>10}" if test else ""
    lines = [f"{'loss':<9} {'role':<8} {'mode':<16} {'w':>9} {objective:>10}{test_head} {'status':<9} "
             f"{'epochs':>6}  trial"]
    for r in rows:
        test_cell = f" {_fmt(r.get('test_value')):>10}" if test else ""
        lines.append(f"{r['loss']:<9} {r['role']:<8} {r['mode']:<16} {_fmt(r['w']):>9} "
                     f"{_fmt(r['value']):>10}{test_cell} {r['status']:<9} {r['epochs']:>6}  {r['trial_id']}"
                     + (f" (seed {r['seed']})" if r["role"] == SEED else ""))
    lines.append("")
    for loss, s in summary.items():
        if s.get("best") is None:
            lines.append(f"{loss}: {s.get('note')}")
            continue
        b = s["best"]
        text = f"{loss}: best {_point(b)} ({b['mode']}): {objective} {_fmt(b['value'])}"
        text += _vs(s["gain_vs_baseline"], "MSE baseline")
        if s["best_paper_point"]:
            text += _vs(s["gain_vs_paper"], f"paper's best {_point(s['best_paper_point'])}")
        if b.get("test_value") is not None:
            text += f"; on test: {test_metric(objective)} {_fmt(b['test_value'])}"
            text += _vs(s.get("gain_vs_baseline_test"), "MSE baseline")
        lines.append(text)
    lines.append(f"({objective}: lower is better)" if objective not in MAXIMISE else
                 f"({objective}: higher is better)")
    return "\n".join(lines)


def write_results(layout: Layout, cfg: SearchConfig, objective: str, rows, summary) -> None:
    import pandas as pd

    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False)
    atomic_write_text(layout.local / "results.csv", buf.getvalue())
    doc = {"name": layout.name, "objective": objective, "lower_is_better": objective not in MAXIMISE,
           "settings": dataclasses.asdict(cfg), "best": summary, "trials": rows}
    atomic_write_text(layout.local / "results.json", json.dumps(doc, indent=1, default=str))
    layout.upload([SETTINGS_FILE, "results.csv", "results.json", JOURNAL_FILE])


# --- main ------------------------------------------------------------------------------------

def prepare(a: argparse.Namespace) -> tuple[SearchConfig, Layout, bool]:
    """Settings and experiment directory, checked before Ray starts. -> (cfg, layout, resume)."""
    if a.resume:
        if a.resume is True:
            if not a.name:
                raise UserError("--resume needs the experiment: --resume DIR, or --name NAME "
                                "(with the --storage-path of the search)")
            layout = Layout(a.storage_path or SearchConfig(losses=[]).storage_path, a.name)
        else:
            d = Path(a.resume).expanduser().resolve()
            layout = Layout(str(d.parent), d.name)
        settings = layout.local / SETTINGS_FILE
        if not settings.is_file():
            raise UserError(f"--resume: {layout.local} is not a search experiment (no {SETTINGS_FILE}); "
                            f"give the directory an earlier search created")
        try:
            cfg = SearchConfig.from_dict(json.loads(settings.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise UserError(f"--resume: {settings} is unreadable ({e}); "
                            "it is not a search's settings") from None
        if a.seeds is not None:  # --resume DIR --seeds N: add seed re-runs to a search
            cfg.seeds = a.seeds
        cfg.validate()
        return cfg, layout, True
    cfg = config_from_args(a)
    cfg.validate()
    if not cfg.name:
        tag = "all" if len(cfg.losses) > 2 else "+".join(cfg.losses) or "search"
        cfg.name = f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    layout = Layout(cfg.storage_path, cfg.name)
    if (layout.local / SETTINGS_FILE).exists():
        raise UserError(f"{layout.local} already holds a search; add --resume to continue it, "
                        f"or pick another --name")
    return cfg, layout, False


@cli_entry
def main(argv=None):
    a = build_parser().parse_args(argv)
    cfg, layout, resume = prepare(a)
    spaces = resolve_spaces(cfg)
    if cfg.space is None and not cfg.losses:
        raise UserError("no loss to search")
    objective, fid_cfg, why = resolve_objective(cfg)
    train_cfg = train_config_dict(cfg)
    data = None
    if not cfg.mock:
        from .data import DataConfig, load_data
        from .train import TrainConfig

        data = load_data(DataConfig(**train_cfg["data"]))  # bad --data fails here, exit 2
        TrainConfig.from_dict(train_cfg)  # validates epochs, lr, ...
    if a.address:
        check_address(a.address)
    layout.check_writable()

    quiet_console()
    started = connect(a.address, a.num_cpus)
    try:
        # only now: a search that could not start leaves no experiment behind
        if not resume or a.seeds is not None:
            atomic_write_text(layout.local / SETTINGS_FILE, json.dumps(dataclasses.asdict(cfg), indent=1))
        return _search(cfg, layout, resume, spaces, objective, fid_cfg, why, train_cfg, data, a)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # The results files are written atomically: the previous ones are intact.
        raise UserError(f"storage path {str(layout.local)!r} is full ({e.strerror}); free space, "
                        f"then continue with --resume {layout.local}") from None
    finally:
        if started:
            ray.shutdown()


def _search(cfg, layout, resume, spaces, objective, fid_cfg, why, train_cfg, data, a):
    resources = ray.cluster_resources()
    if cfg.gpus_per_trial is None:
        cfg.gpus_per_trial = 1.0 if resources.get("GPU", 0) > 0 and not cfg.mock else 0.0
    if not a.address:  # a local cluster cannot grow: a trial that does not fit would wait forever
        for kind, need in (("CPU", cfg.cpus_per_trial), ("GPU", cfg.gpus_per_trial)):
            if need > resources.get(kind, 0):
                raise UserError(f"a trial needs {need:g} {kind} but this machine has "
                                f"{resources.get(kind, 0):g}; lower --{kind.lower()}s-per-trial")
    base_config = {
        "train": train_cfg, "objective": objective, "fid": fid_cfg, "eval_every": cfg.eval_every,
        "cpus": cfg.cpus_per_trial, "with_mse": True, "w": None, "faults": cfg.faults,
    }
    data_ref = ray.put(data) if data is not None else None
    trainable = trainable_for(cfg, data_ref)
    journal = journal_storage(layout.local / JOURNAL_FILE)
    n = sum(len(s.points) if s.grid else cfg.num_samples for s in spaces.values())
    say(f"search {layout.name}: {', '.join(cfg.losses)}; {n} trials + 1 MSE baseline, "
        f"{cfg.epochs} epochs each; objective {objective} ({why}); "
        f"{cfg.cpus_per_trial:g} CPU + {cfg.gpus_per_trial:g} GPU per trial; "
        f"{'resuming ' if resume else ''}{layout.storage}")

    def job(exp, space):
        def build():
            return build_tuner(cfg, layout, exp, space, base_config, trainable, objective, journal)
        return lambda: restore_or_build(layout.experiment(exp), trainable, resume, build).fit()

    jobs = {BASELINE: job(BASELINE, None)}
    jobs.update({loss: job(loss, spaces[loss]) for loss in cfg.losses})
    start = time.perf_counter()
    grids = run_experiments(jobs)
    rows = []
    for exp, grid in grids.items():
        rows.extend(collect_rows(exp, grid, cfg, spaces.get(exp), objective))
    summary = summarise(rows, cfg.losses, objective)
    if cfg.seeds:
        seed_jobs = seed_experiments(cfg, layout, resume, summary, base_config, trainable)
        for exp, grid in run_experiments(seed_jobs).items():
            rows.extend(collect_rows(exp, grid, cfg, None, objective, seeds=True))
    write_results(layout, cfg, objective, rows, summary)
    say("")
    say(format_table(rows, summary, objective))
    say(f"\n{len(rows)} trials in {time.perf_counter() - start:.0f} s; results: "
        f"{layout.local / 'results.csv'}, {layout.local / 'results.json'}")
    say(f"tensorboard --logdir {layout.storage}    optuna-dashboard {layout.local / JOURNAL_FILE}")
    return 0


if __name__ == "__main__":
    # Run the package module's main, not this __main__ copy: Ray pickles the classes and
    # functions it is given (callbacks, samplers) by reference to an importable module.
    from tune_vqvae.search import main as _main

    sys.exit(_main())
