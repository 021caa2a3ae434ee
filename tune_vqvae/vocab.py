"""The words every layer shares: trial config keys' values, labels, metric directions, file
names and the paper's grid. One definition each; core, search and analysis import them.

Plain Python (no ray, no torch): `analysis` reads finished searches on machines without
either, and the trainables import this in every Ray worker.

    >>> label("gmsd", True, 0.5), label("gmsd", False), label("mse")
    ('mse+0.5*gmsd', 'gmsd (no mse)', 'mse')
    >>> mode("gmsd", True), point_name(True, 0.5), dir_tag(BASELINE, True, None)
    ('mse+w*gmsd', 'w=0.5', 'mse')

A joint loss ("ssim+gmsd": mse + w1*ssim + w2*gmsd, issue 13) has one weight per part, w1, w2
in the trial config (`weight_keys`); where a single loss has a number w, these functions take
the tuple of its weights:

    >>> label("ssim+gmsd", True, (0.5, 0.25)), mode("ssim+gmsd", True), dir_tag(SEARCH, True, (1, 2))
    ('mse+0.5*ssim+0.25*gmsd', 'mse+w1*ssim+w2*gmsd', 'w1_2')
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import yaml

# --- roles ---------------------------------------------------------------------------------
# A trial config's "role" says what the trial runs: the plain-MSE BASELINE, or a point of a
# loss's SEARCH (searched by Optuna, or one of the seed re-runs of a best config).
# A results row's "role" says what the trial is for, in the table: BASELINE, PAPER (a point of
# the paper's grid), SEARCH (a weight the sampler chose), SEED (a --seeds re-run with another
# seed) or CONFIRM (a run of the confirmation stage: a top candidate with a fresh seed).
BASELINE, SEARCH, PAPER, SEED, CONFIRM = "baseline", "search", "paper", "seed", "confirm"
CONFIG_ROLES = (BASELINE, SEARCH)
ROW_ROLES = (BASELINE, PAPER, SEARCH, SEED, CONFIRM)  # also the order of the results table

# --- the confirmation stage ----------------------------------------------------------------
# The candidates the end of a search re-runs with fresh seeds (a trial config's "candidate"
# and a results row's "candidate": the names joined by "+" when two coincide, e.g.
# "best_paper+best_observed"): the surrogate's recommended w, the best paper point, the
# best single observation, and with a distortion budget (--constraint, issue 24) the best w
# within it (stats.constrained; the one a sequential confirmation races).
RECOMMENDED, BEST_PAPER, BEST_OBSERVED = "recommended", "best_paper", "best_observed"
WITHIN_BUDGET = "within_budget"
CANDIDATES = (RECOMMENDED, BEST_PAPER, BEST_OBSERVED, WITHIN_BUDGET)
CONFIRM_SEED_OFFSET = 1000  # confirmation seeds: --seed + 1000 + k, never used by the search
# Each trial of the search stage trains a seed of its own: --seed + 500 + its trial number in
# its loss's study (issue 21's seed policy, chosen by `bench search --search-seeds`: with one
# shared seed a w proposed twice re-ran the identical run, which the GP took as two agreeing
# observations). Trial numbers stay below MAX_TRIALS (search._config refuses more), so a search
# run never trains a confirmation seed (+1000..): the best observed w's confirmation would
# otherwise re-run the very run that selected it.
SEARCH_SEED_OFFSET = 500
MAX_TRIALS = 400  # trials per loss (--num-samples); the rest up to 500: resumes' orphaned trials


def rerun_seeds(seed: int, baseline_seeds: int, n: int) -> list[int]:
    """--seeds N: the seeds of the re-runs of the baseline and each loss's best config, after
    the baseline's own seeds (--seed .. --seed + baseline_seeds - 1): a seed trained twice is
    the same run, not a replicate, and would shrink the measured run-to-run noise."""
    return [seed + max(baseline_seeds, 1) + k for k in range(n)]


def search_seed(seed: int, trial_number: int) -> int:
    """The training seed of the search-stage trial `trial_number` of a loss's study."""
    return seed + SEARCH_SEED_OFFSET + trial_number
# The sequential confirmation's round k (--confirm-budget) trains seed --seed + 2000 + k: not
# 1000 + k, so a race added by --resume to a search with a fixed stage pairs no seed twice.
RACE_SEED_OFFSET = 2000
# With --race-baseline-runs B the baseline trains B - 1 more seeds in round k, run j = 1..B-1
# on --seed + 2000 + k + 1000 * j: >= 3000, so never a search, baseline, --seeds, fixed-stage
# or common race seed (rounds stay below stats.sequential.MAX_RACE_ROUNDS < 1000), and no
# other round's either; seeds no candidate trains, so each round's baseline mean stays
# independent of every other round's.
RACE_EXTRA_SEED_STRIDE = 1000


def race_seeds(seed: int, k: int, runs: int = 1) -> list[int]:
    """The seeds round k of a race trains the MSE baseline on: the common one first (every
    candidate of the round trains it too), then runs - 1 seeds of the baseline's own."""
    return [seed + RACE_SEED_OFFSET + k + RACE_EXTRA_SEED_STRIDE * j for j in range(runs)]


# --- a trial's status in results.csv / results.json (the search's rows; the report's too) ---
COMPLETED, STOPPED, DIVERGED, ERROR = "COMPLETED", "STOPPED", "DIVERGED", "ERROR"
FAILED_STATUSES = (ERROR, DIVERGED)
# Verdicts of a comparison (tune_vqvae.stats.intervals.verdict), as the results files spell them
# between candidates; against the MSE baseline they spell stats.equivalence.VERDICTS (issue 21).
VERDICTS = ("better", "indistinguishable", "worse")
NOT_RESOLVED = "not resolved"  # a question the runs cannot answer (too few replicates)

# --- metrics and the objective -------------------------------------------------------------
EVAL_METRICS = ("fid", "swd", "kid")  # scored by tune_vqvae.metrics; fid preferred where both exist
# Reported at the last epoch when the search selects on held-out training images.
TEST_METRICS = ("test_fid", "test_swd", "test_kid", "test_mse", "test_psnr", "test_ssim", "test_recon")
# What --objective may name, its direction, unit and test split: tune_vqvae.objectives.


def test_metric(key: str) -> str:
    """The test-split counterpart of a metric: fid -> test_fid, val_mse -> test_mse."""
    return "test_" + key.removeprefix("val_")


def half_metric(key: str, half: int) -> str:
    """A metric scored on one of two disjoint halves of the evaluation images (at a run's last
    evaluation; the noise budget, tune_vqvae.stats.noise): fid -> fid_half1, fid_half2."""
    return f"{key}_half{half}"


def images_metric(key: str) -> str:
    """The number of evaluation images behind a metric's score: swd -> swd_images."""
    return f"{key}_images"


# The noise budget's columns of every scored metric (the halves and the full set's size).
HALF_METRICS = tuple(m for key in EVAL_METRICS
                     for m in (half_metric(key, 1), half_metric(key, 2), images_metric(key)))


# --- one trial config and its names --------------------------------------------------------

def config_point(config: dict) -> tuple[str, bool, float | tuple | None]:
    """(loss, with_mse, w) of a trial config or results row, the one reading of its weights:
    the baseline is ("mse", True, None); without MSE w is None; a joint loss's w is the tuple
    of its weights (w1, w2), None until it has all of them.

    >>> config_point({"loss": "ssim+gmsd", "w1": 0.5, "w2": 2, "w": None})
    ('ssim+gmsd', True, (0.5, 2.0))
    """
    if config.get("role") == BASELINE or config.get("loss", "mse") == "mse":
        return "mse", True, None
    with_mse = bool(config.get("with_mse", True))
    if not with_mse:
        return config["loss"], False, None
    w = config.get("w")
    return config["loss"], True, joint_weights(config) or (float(w) if _is_number(w) else None)


def config_weights(config: dict) -> tuple[bool, float | tuple | None]:
    """(with_mse, w) of `config_point`: the point of its loss's space a config runs."""
    return config_point(config)[1:]


def _is_number(w) -> bool:
    return isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w)


def loss_settings(config: dict) -> tuple[str, float, bool]:
    """(loss name, weight, with_mse) a trial trains with (`config_point`): a trial without
    one weight (the baseline, no MSE; a joint loss: `joint_weights`) trains with weight 1."""
    name, with_mse, w = config_point(config)
    return name, w if isinstance(w, float) else 1.0, with_mse


def _is_weights(w) -> bool:
    """A joint loss's weights (a tuple or list), not one number."""
    return isinstance(w, (tuple, list))


def _joint_label(loss: str, weights, spec: str) -> str:
    """mse+0.5*ssim+0.25*gmsd; with unknown weights mse+w1*ssim+w2*gmsd."""
    parts = loss_parts(loss)
    if not _is_weights(weights) or len(weights) != len(parts):
        weights = weight_keys(loss)
        return "mse+" + "+".join(f"{k}*{p}" for k, p in zip(weights, parts))
    return "mse+" + "+".join(f"{float(w):{spec}}*{p}" for w, p in zip(weights, parts))


def label(loss: str, with_mse: bool = True, w: float | tuple | None = None) -> str:
    """The config's name in progress lines and reports: mse+0.5*gmsd, gmsd (no mse), mse;
    a joint loss with its weights' tuple: mse+0.5*ssim+0.25*gmsd."""
    if loss == "mse":
        return "mse"
    if is_joint(loss):
        return _joint_label(loss, w, ".4g")
    return f"mse+{w:.4g}*{loss}" if with_mse else f"{loss} (no mse)"


def config_label(config: dict) -> str:
    name, w, with_mse = loss_settings(config)
    return label(name, with_mse, joint_weights(config) or w)


def run_label(loss: str, with_mse: bool, w: float | tuple) -> str:
    """A training run's name (tune_vqvae.train): mse+0.5*gmsd, gmsd (alone), mse,
    mse+0.5*ssim+0.25*gmsd."""
    if loss == "mse":
        return "mse"
    if is_joint(loss):
        return _joint_label(loss, w, "g")
    return f"mse+{w:g}*{loss}" if with_mse else loss


def mode(loss: str, with_mse: bool) -> str:
    """The config without its weight (results.csv `mode`): mse+w*gmsd, gmsd alone, mse,
    mse+w1*ssim+w2*gmsd."""
    if loss == "mse":
        return "mse"
    if is_joint(loss):
        return _joint_label(loss, None, "")
    return f"mse+w*{loss}" if with_mse else f"{loss} alone"


def point_name(with_mse: bool, w: float | tuple | None) -> str:
    """A point of a loss's space: w=0.5, or no MSE; a joint loss's w=(0.5, 0.25)."""
    if _is_weights(w):
        return "w=(" + ", ".join(f"{float(v):.4g}" for v in w) + ")"
    return f"w={w:.4g}" if with_mse else "no MSE"


def dir_tag(role: str | None, with_mse: bool, w: float | tuple | None) -> str:
    """The config part of a trial directory's name: mse (baseline), w0.5, nomse, w0.5_0.25."""
    if role == BASELINE:
        return "mse"
    if _is_weights(w):
        return "w" + "_".join(f"{float(v):.4g}" for v in w)
    if with_mse:
        return f"w{w:.4g}" if w is not None else "w"
    return "nomse"


# --- joint losses: mse + w1 * a + w2 * b (issue 13) ------------------------------------------
# A loss name with JOINT_SEP ("ssim+gmsd") sums its parts, each with its own weight: the
# trial config's w1, w2, ... (Optuna's parameters; "w" stays None), in the name's order.
JOINT_SEP = "+"


def loss_parts(loss: str) -> tuple[str, ...]:
    """The losses a name sums: ("ssim", "gmsd") for "ssim+gmsd"; (loss,) for one loss."""
    return tuple(loss.split(JOINT_SEP))


def is_joint(loss: str | None) -> bool:
    return isinstance(loss, str) and JOINT_SEP in loss


def weight_keys(loss: str) -> tuple[str, ...]:
    """The trial config's (and Optuna's) weight parameters: ("w1", "w2") for a joint loss,
    ("w",) for one loss."""
    parts = loss_parts(loss)
    return tuple(f"w{i + 1}" for i in range(len(parts))) if len(parts) > 1 else ("w",)


def joint_weights(config: dict) -> tuple[float, ...] | None:
    """The weights (w1, w2, ...) of a joint loss's trial config or results row; None for a
    single loss, the baseline, or a joint config without all its weights (yet)."""
    loss = config.get("loss")
    if config.get("role") == BASELINE or not is_joint(loss):
        return None
    values = [config.get(k) for k in weight_keys(loss)]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return None
    return tuple(float(v) for v in values)


def weight_params(loss: str, weights) -> dict:
    """{"w1": .., "w2": ..} of a joint loss's weights (the trial config's keys)."""
    return dict(zip(weight_keys(loss), (float(v) for v in weights)))


# --- files of a search ---------------------------------------------------------------------
SETTINGS_FILE = "search.json"  # the search's settings; --resume reads them
JOURNAL_FILE = "optuna_journal.log"  # the Optuna studies, one per loss
RESULTS_CSV, RESULTS_JSON = "results.csv", "results.json"
BASELINE_EXPERIMENT = BASELINE  # <search>/baseline/: the Tune experiment of the MSE baseline
SEEDS_SUFFIX = "-seeds"  # <search>/<loss>-seeds/, baseline-seeds/: the --seeds re-runs
CONFIRM_SUFFIX = "-confirm"  # <search>/<loss>-confirm/: the confirmation stage's runs


def race_experiment(look: int) -> str:
    """<search>/r03-confirm/, r04-confirm/, ...: the sequential confirmation's experiment that
    ends at the look after `look` rounds (the first runs rounds 0..2 together)."""
    return f"r{look:02d}{CONFIRM_SUFFIX}"


CHECKPOINT_FILE = "trainer.pt"  # a Trainer state in each trial checkpoint_NNNNNN/
# Next to it: the trial's epoch, last evaluation and every result it reported so far
# ("reported"): the checkpoint persists with each report, so the analysis reads from it the
# epochs a worker death cut from result.json (Ray copies the staged file back on a restart).
TRIAL_STATE_FILE = "trial_state.json"

# --- the weight's range --------------------------------------------------------------------
# Every weight's (low, high) where a space file gives none (a grid file, the default space of
# a joint loss; a report of a search that saved no bounds). A space's own: SearchSpace.bounds.
DEFAULT_W_BOUNDS = (1e-3, 10.0)

# --- the paper's grid ----------------------------------------------------------------------
SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"
PAPER_GRID_FILE = SPACES_DIR / "paper_grid.yaml"


@functools.cache
def paper_points() -> tuple[dict, ...]:
    """The paper's points per loss, as search_spaces/paper_grid.yaml lists them:
    {"with_mse": True, "w": 1.0}, ..., {"with_mse": False}. (The search validates the
    file like any space file; this reads only its points.)"""
    raw = yaml.safe_load(PAPER_GRID_FILE.read_text())
    return tuple({"with_mse": True, "w": float(p["w"])} if p["with_mse"] else {"with_mse": False}
                 for p in raw["points"])


def paper_weights() -> tuple[float, ...]:
    """The with-MSE weights of the paper's grid, largest first: (1.0, 0.5, 0.25)."""
    return tuple(sorted((p["w"] for p in paper_points() if p["with_mse"]), reverse=True))


def on_paper_grid(loss: str, with_mse: bool, w: float | None) -> bool:
    """Whether a config is one of the paper's (the baseline and every no-MSE run are)."""
    if loss == "mse" or not with_mse:
        return True
    return w is not None and any(math.isclose(w, g, rel_tol=1e-6) for g in paper_weights())
