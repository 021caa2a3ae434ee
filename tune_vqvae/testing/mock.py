"""The mock trainable (`--mock`), which Ray workers import.

`mock_trainable` stands in for `train_vqvae`, so the search machinery (Optuna, ASHA,
checkpoints, retries, resume, replicates, confirmation) runs in seconds; users see it with
`python -m tune_vqvae.search --mock`. Its objective comes from the trial config's
`mock_curve` (`--mock-curve`):

- "known" (default): a sharp known optimum per loss (`MOCK_BEST_W`) and almost no noise,
  for tests that check the machinery finds what it should;
- a curve of `tune_vqvae.curves` ("realistic", "no_gain") or "module:function": the
  measured noise model (flat at the baseline for w -> 0, a shallow optimum, a steep rise
  above 1, 3.5% multiplicative noise per run, uncorrelated across configs and seeded by
  (config, seed), so a run is reproducible), for tests of the statistics.

With --holdout, the test split's scores (`mock_test_objective`) rank the weights otherwise
(the known curve's test optimum is at w*/4), so tests can tell which split selected the
winner. Step times differ per loss (`MOCK_STEP_MS`, the first epoch slower), so the
analysis's overhead table has known figures.

It lives in the package, not under tests/, because Ray's worker processes import it by
module name wherever the search runs.
"""

from __future__ import annotations

import json
import math
import os
import zlib

import numpy as np
from ray import tune

from .. import objectives
from ..curves import load_curve
from ..errors import DivergedError, check_finite
from ..train.faults import damaged_checkpoint, inject_faults, inject_nan_metric
from ..trainable import (
    TRAINER_METRICS,
    DamagedCheckpoint,
    diverged_result,
    failed_result,
    node_id,
    quiet_logs,
    report_epoch,
    restore_state,
)
from ..vocab import EVAL_METRICS, half_metric, images_metric, joint_weights, loss_settings, test_metric

# The known best weight of each loss in the mock (not on the paper's grid on purpose).
MOCK_BEST_W = {"psnr": 0.05, "ssim": 2.0, "ms_ssim": 3.0, "haarpsi": 0.1, "gmsd": 2.0,
               "ms_gmsd": 0.02}
MOCK_BASELINE = 1.0  # final objective of the plain-MSE baseline
MOCK_NO_MSE = 1.5  # final objective of the "no MSE" variant (worse than the baseline)
MOCK_FLOOR = 0.2  # final objective at the best w (so the best gains 80% over the baseline)
MOCK_SEED_NOISE = 0.01  # amplitude of the mock's seed dependence (none for seed 0)
# With --holdout, the test split's best weight: a quarter of the held-out one, so that selecting
# on test instead of on the held-out images picks another w (and tests can tell which was used).
MOCK_TEST_BEST_W = {loss: w / 4 for loss, w in MOCK_BEST_W.items()}
MOCK_TEST_FACTOR = 1.05  # the test split scores 5% worse (at its own optimum)
# Mean wall time of a training step (ms) and of the reconstruction loss within it, per loss: a
# perceptual loss costs more than MSE, each by its own amount, so the analysis's overhead
# table has known figures. The first epoch's steps take MOCK_WARMUP times as long (allocation,
# compilation), which the analysis leaves out.
MOCK_STEP_MS = {"mse": 10.0, "psnr": 10.5, "ssim": 12.0, "ms_ssim": 14.0, "haarpsi": 13.0,
                "gmsd": 11.5, "ms_gmsd": 12.5}
MOCK_RECON_LOSS_MS = {"mse": 0.2, "psnr": 0.4, "ssim": 1.5, "ms_ssim": 3.0, "haarpsi": 2.5,
                      "gmsd": 1.15, "ms_gmsd": 2.0}
MOCK_OTHER_STEP_MS, MOCK_OTHER_RECON_LOSS_MS = 12.0, 1.0  # a plugin loss
MOCK_WARMUP = 3.0
# A joint loss's known best (w1, w2) and its final objective there (beats each part alone).
MOCK_BEST_JOINT = {"ssim+gmsd": (0.5, 0.05)}
MOCK_JOINT_FLOOR = 0.15


def mock_final_objective(config: dict, best_w: dict | None = None) -> float:
    """Final objective of the mock: (log10 w - log10 w*)^2 + floor, plus small noise; w* from
    `best_w` (default MOCK_BEST_W)."""
    name, w, with_mse = loss_settings(config)
    # Seed "noise" (0 for seed 0): --seeds re-runs differ a little, like real training runs.
    seed_noise = MOCK_SEED_NOISE * math.sin(float((config.get("train") or {}).get("seed", 0)))
    if name == "mse":
        return MOCK_BASELINE + seed_noise
    if not with_mse:
        return MOCK_NO_MSE + seed_noise
    weights = joint_weights(config)
    if weights is not None:  # a joint loss: a bowl in (log w1, log w2), below the single losses'
        best = MOCK_BEST_JOINT.get(name, (1.0,) * len(weights))
        return MOCK_JOINT_FLOOR + sum((math.log10(w) - math.log10(b)) ** 2 for w, b in zip(weights, best)) \
            + seed_noise
    value = MOCK_FLOOR + (math.log10(w) - math.log10((best_w or MOCK_BEST_W).get(name, 1.0))) ** 2
    # Deterministic "noise": a fixed function of w, +-1% of the floor.
    noise = 0.01 * MOCK_FLOOR * math.sin(1e3 * math.log(w))
    return value + noise + seed_noise


def mock_test_objective(config: dict) -> float:
    """With --holdout, the mock's final objective on the test split: MOCK_TEST_FACTOR times the
    held-out curve with its optimum moved to MOCK_TEST_BEST_W (the known curve), so the
    held-out and test rankings of the weights disagree; MOCK_TEST_FACTOR times the held-out
    value for the baseline, "no MSE" and the other curves."""
    if (config.get("mock_curve") or "known") == "known":
        return MOCK_TEST_FACTOR * mock_final_objective(config, MOCK_TEST_BEST_W)
    epochs = int(config["train"]["epochs"])
    return MOCK_TEST_FACTOR * mock_objective(config, epochs, epochs)


def mock_step_ms(config: dict, epoch: int) -> tuple[float, float]:
    """(step_ms, recon_loss_ms) the mock reports at `epoch` (see MOCK_STEP_MS)."""
    name = loss_settings(config)[0]
    warmup = MOCK_WARMUP if epoch == 1 else 1.0
    return (warmup * MOCK_STEP_MS.get(name, MOCK_OTHER_STEP_MS),
            warmup * MOCK_RECON_LOSS_MS.get(name, MOCK_OTHER_RECON_LOSS_MS))


def _scores(value: float) -> dict:
    """The metrics the mock derives from an objective value (held out, or test as test_*)."""
    return dict(fid=100 * value, kid=1e-3 * value, swd=value, val_mse=0.01 * value, val_recon=value,
                val_psnr=30 - value, val_ssim=1 - value / 10)


MOCK_EVAL_NOISE = 0.02  # a half's scoring error, relative (the noise budget's eval part)
MOCK_EVAL_IMAGES = 1000


def _half_scores(config: dict, value: float) -> dict:
    """The evaluated metrics on two halves of the evaluation images: the value off by a
    scoring error drawn from the trial's config and seed (reproducible, like a real run)."""
    key = json.dumps([loss_settings(config), config["train"].get("seed", 0)], default=str)
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    out = {}
    for half in (1, 2):
        scores = _scores(value * (1 + MOCK_EVAL_NOISE * rng.standard_normal()))
        out.update({half_metric(k, half): scores[k] for k in EVAL_METRICS})
    return {**out, **{images_metric(k): float(MOCK_EVAL_IMAGES) for k in EVAL_METRICS}}


def mock_objective(config: dict, epoch: int, epochs: int) -> float:
    """The mock's objective after `epoch` of `epochs`: with the known curve it starts 1.0
    above the final value and decays like 1/epoch; else the trial's `mock_curve`."""
    curve = config.get("mock_curve") or "known"
    if curve == "known":
        return mock_final_objective(config) + (1.0 / epoch - 1.0 / epochs)
    name, w, with_mse = loss_settings(config)
    seed = int((config.get("train") or {}).get("seed", 0))
    w = w if with_mse and name != "mse" else None
    return float(load_curve(curve)(name, with_mse, w, seed, epoch, epochs))


def mock_trainable(config: dict, data=None) -> None:
    """A cheap deterministic stand-in for `train_vqvae`: same metrics, checkpoints, faults."""
    quiet_logs()
    epochs = int(config["train"]["epochs"])
    state = {"epoch": 0}

    def load(d):
        with open(os.path.join(d, "mock.json")) as f:
            state.update(json.load(f))

    def save(d):
        with open(os.path.join(d, "mock.json"), "w") as f:
            if damaged_checkpoint(config, state["epoch"]):
                f.write("{damaged")  # the file a full disk or a bad copy leaves
            else:
                json.dump(state, f)

    try:
        restored = restore_state(load) or {}
    except DamagedCheckpoint as e:
        tune.report(failed_result(e))
        return
    state["epoch"] = restored.get("epoch", state["epoch"])
    reported = restored.get("reported", [])
    # TensorBoard events like the real trainable (tensorboardX ships with ray[tune]).
    from tensorboardX import SummaryWriter

    # A suffix: Ray's own TensorBoard logger writes events.out.tfevents.<time>.<host> into
    # the same trial directory, and a file of the same name would replace it.
    writer = SummaryWriter(os.getcwd(), filename_suffix=".trial")
    try:
        while state["epoch"] < epochs:
            epoch = state["epoch"] + 1
            try:
                inject_faults(config, epoch)
            except DivergedError as e:
                tune.report(diverged_result(e.epoch, e))
                return
            value = mock_objective(config, epoch, epochs)
            state["epoch"] = epoch
            step_ms, recon_loss_ms = mock_step_ms(config, epoch)
            metrics = {name: 0.0 for name in TRAINER_METRICS}
            metrics.update(
                epoch=float(epoch), **_scores(value), kid_std=1e-4 * value,
                train_loss=value, step_ms=step_ms, recon_loss_ms=recon_loss_ms,
                images_per_s=1000 * int(config["train"].get("batch_size", 128)) / step_ms,
                perplexity=20.0, codes_used=0.5, eval_epoch=float(epoch), diverged=0.0,
                node_id=node_id(),
            )
            if epoch == epochs:  # as the real trainable: the halves at the last evaluation
                metrics.update(_half_scores(config, value))
            if epoch == epochs and config["train"]["data"].get("holdout"):
                # With a holdout the test split ranks the weights differently (mock_test_objective).
                metrics.update({test_metric(k): v for k, v in _scores(mock_test_objective(config)).items()})
            metrics.update(objectives.get(config["objective"]).report(metrics))
            inject_nan_metric(config, epoch, metrics)
            try:  # as the real trainable: NaN in any metric is divergence
                check_finite(metrics, epoch)
            except DivergedError as e:
                tune.report(diverged_result(e.epoch, e))
                return
            writer.add_scalar("val/objective", metrics["objective"], epoch)
            writer.flush()
            report_epoch(metrics, {"epoch": epoch, "last_eval": {}, "reported": reported}, save)
    finally:
        writer.close()
