"""Ray Tune trainables: `train_vqvae` around the core `Trainer`, and `mock_trainable`.

A trial's config (built by `tune_vqvae.search`):

    train      TrainConfig as a dict (`dataclasses.asdict`); its `loss` is replaced by ...
    loss       the perceptual loss this experiment searches (e.g. "gmsd")
    role       "search" (a point of the Optuna study) or "baseline" (plain MSE)
    with_mse   bool: mse + w * loss (True) or loss alone (False)      <- Optuna
    w          float weight, only for with_mse trials (None otherwise) <- Optuna
    objective  the reported metric the search minimises ("fid" or "swd", or any metric)
    fid        FIDConfig as a dict (weights path resolved by the driver; fid_mode "off"
               when no weights: then only the offline `swd` is computed)
    eval_every FID/SWD every N epochs (and always at the last epoch)
               With a holdout (DataConfig.holdout) the objective is measured on the
               held-out training images, and the last epoch also reports the same metrics
               on the test split as test_fid, test_swd, test_mse, test_psnr, test_ssim,
               test_recon (TEST_METRICS).
    cpus       torch threads of the trial
    faults     fault injection for the reliability tests, see `inject_faults`

Every epoch is reported once with a checkpoint (Ray's checkpoint API), so a trial can be
paused, stopped early by ASHA, retried after a crash from its last epoch (FailureConfig)
and resumed after the driver dies (`Tuner.restore`). A diverging trial (NaN/inf loss)
reports one last result with `diverged = 1` and `objective = NaN` and ends: the searcher
marks its Optuna trial FAIL, and it is not retried (divergence is deterministic).

The dataset reaches the trials through the object store (`tune.with_parameters`, see
`search.py`), never inside the config.

This module imports ray at the top, but torch and the core only inside the real
trainable, so mock trials start in a fraction of a second.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

import ray
from ray import tune

CHECKPOINT_FILE = "trainer.pt"
STATE_FILE = "trial_state.json"  # epoch + last evaluation, next to the trainer state

# Metrics every trial reports (the real trainable reports these and Trainer's others).
EVAL_METRICS = ("fid", "swd")
TRAINER_METRICS = (
    "epoch", "train_loss", "train_recon", "train_mse", "train_vq", "train_commit",
    "val_mse", "val_psnr", "val_ssim", "val_recon", "perplexity", "codes_used",
    "images_per_s", "step_ms", "recon_loss_ms", "epoch_s",
)
# What --objective may name. The reported `objective` is always minimised: it is the
# metric itself, or its negative for the higher-is-better ones in MAXIMISE.
OBJECTIVES = ("fid", "swd", "val_mse", "val_recon", "val_psnr", "val_ssim", "train_loss")
MAXIMISE = ("val_psnr", "val_ssim")
# Reported at the last epoch when the search selects on held-out training images.
TEST_METRICS = ("test_fid", "test_swd", "test_mse", "test_psnr", "test_ssim", "test_recon")


def objective_value(metrics: dict, objective: str) -> float:
    return -metrics[objective] if objective in MAXIMISE else metrics[objective]


def test_metric(objective: str) -> str:
    """The test-split counterpart of an objective: fid -> test_fid, val_mse -> test_mse."""
    return "test_" + objective.removeprefix("val_")


class InjectedCrash(RuntimeError):
    """Raised by `inject_faults` to simulate a trial process failing at an epoch."""


def loss_settings(config: dict) -> tuple[str, float, bool]:
    """(loss name, weight, with_mse) of a trial: the baseline is plain MSE."""
    if config.get("role") == "baseline":
        return "mse", 1.0, True
    with_mse = bool(config.get("with_mse", True))
    w = config.get("w")
    return config["loss"], float(w) if (with_mse and w is not None) else 1.0, with_mse


def label(config: dict) -> str:
    name, w, with_mse = loss_settings(config)
    if name == "mse":
        return "mse"
    return f"mse+{w:.4g}*{name}" if with_mse else f"{name} (no mse)"


def _trial_key() -> str:
    with warnings.catch_warnings():  # outside a trial (unit tests) Ray warns, returns None
        warnings.simplefilter("ignore")
        return tune.get_context().get_trial_id() or "local"


def inject_faults(config: dict, epoch: int) -> None:
    """Fault injection for tests, before training epoch `epoch` (1-based).

    config["faults"]: one dict or a list of them, each
        {"crash_at_epoch": k, "kill_at_epoch": k, "nan_at_epoch": k, "sleep_s": s,
         "marker_dir": DIR, "only_w": w}
    crash (raise) and kill (the worker process exits) happen once per trial and epoch (a
    marker file in marker_dir remembers), so the retry from the checkpoint succeeds; nan
    happens every time (divergence is deterministic). `only_w` restricts a fault to the
    trial with that weight.
    """
    from .errors import DivergedError

    faults = config.get("faults") or []
    for fault in faults if isinstance(faults, list) else [faults]:
        if "only_w" in fault and config.get("w") != fault["only_w"]:
            continue
        if fault.get("sleep_s"):
            time.sleep(float(fault["sleep_s"]))
        if fault.get("nan_at_epoch") == epoch:
            raise DivergedError(epoch, "train_loss (injected)")
        for kind in ("crash", "kill"):
            if fault.get(f"{kind}_at_epoch") != epoch:
                continue
            marker = Path(fault["marker_dir"]) / f"{kind}-{_trial_key()}-{epoch}"
            if marker.exists():
                continue
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            if kind == "kill":
                os._exit(1)  # the worker process dies without cleanup, like a lost node
            raise InjectedCrash(f"injected crash at epoch {epoch}")


def _node() -> str:
    """The Ray node a trial runs on (reported, so tests and users can see the spread)."""
    return ray.get_runtime_context().get_node_id()


def _report(metrics: dict, state: dict, save) -> None:
    """Report one epoch with a checkpoint: `save(dir)` writes the trainer's state."""
    with tempfile.TemporaryDirectory() as d:
        save(d)
        with open(os.path.join(d, STATE_FILE), "w") as f:
            json.dump(state, f)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def _restore_state(load) -> dict | None:
    """Load the last checkpoint of this trial (after a retry or a resumed search)."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as d:
        load(d)
        with open(os.path.join(d, STATE_FILE)) as f:
            return json.load(f)


def _quiet() -> None:
    """Ray logs a line per persisted checkpoint (one per epoch): keep the console readable."""
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)


def _diverged(epoch: int, error: Exception) -> dict:
    nan = float("nan")
    return {"epoch": float(epoch), "diverged": 1.0, "objective": nan, "error": str(error)}


def _resolve_data(data):
    """`data` is an ImageData, or an ObjectRef to one (shared by all experiments)."""
    if isinstance(data, ray.ObjectRef):
        return ray.get(data)
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], ray.ObjectRef):
        return ray.get(data[0])
    return data


def train_vqvae(config: dict, data=None) -> None:
    """One real VQ-VAE training run as a Tune trial (see the module docstring)."""
    import torch

    from .errors import DivergedError
    from .fid import FIDConfig, FIDEvaluator
    from .losses import LossConfig
    from .train import TrainConfig, Trainer

    _quiet()
    torch.set_num_threads(max(1, int(config.get("cpus", 1))))
    cfg = TrainConfig.from_dict(config["train"])
    name, w, with_mse = loss_settings(config)
    cfg.loss = LossConfig(name=name, weight=w, with_mse=with_mse)
    data = _resolve_data(data)
    # The trial's working directory: Ray chdirs there and syncs it to the trial's
    # directory in the experiment (SyncConfig(sync_artifacts=True)), on any node.
    trainer = Trainer(cfg, data=data, log_dir=os.getcwd())
    fid_cfg = FIDConfig.from_dict(config["fid"])
    evaluator = FIDEvaluator(fid_cfg, trainer.data, device=trainer.device)
    held_out = trainer.data.x_holdout is not None  # then val is not test: score test at the end
    test_evaluator = FIDEvaluator(  # the same Inception network: loaded once per trial
        fid_cfg, trainer.data, trainer.device, extractor=evaluator.extractor,
        extractor_id=evaluator.extractor_id, split="test") if held_out else None
    objective = config["objective"]
    eval_every = int(config.get("eval_every", 1))

    state = _restore_state(lambda d: trainer.load_checkpoint(os.path.join(d, CHECKPOINT_FILE)))
    last_eval = (state or {}).get("last_eval", {})
    try:
        while trainer.epoch < cfg.epochs:
            inject_faults(config, trainer.epoch + 1)
            try:
                metrics = trainer.train_epoch()
            except DivergedError as e:
                tune.report(_diverged(e.epoch, e))
                return
            epoch = trainer.epoch
            # Always at the first epoch too: every report needs an objective (ASHA, Optuna);
            # between evaluation epochs the last evaluation is reported again.
            if not last_eval or epoch % eval_every == 0 or epoch == cfg.epochs \
                    or objective not in EVAL_METRICS:
                last_eval = evaluator.evaluate(trainer.reconstruct)
                last_eval["eval_epoch"] = float(epoch)
            metrics.update(last_eval)
            if held_out and epoch == cfg.epochs:
                metrics.update(_test_scores(trainer, test_evaluator))
            metrics["objective"] = objective_value(metrics, objective)
            metrics["diverged"] = 0.0
            _report(
                {**{k: float(v) for k, v in metrics.items()}, "node_id": _node()},
                {"epoch": epoch, "last_eval": last_eval},
                lambda d: trainer.save_checkpoint(os.path.join(d, CHECKPOINT_FILE)),
            )
    finally:
        trainer.close()


def _test_scores(trainer, evaluator) -> dict:
    """The final model on the test split: FID/SWD and the val_* metrics as test_*."""
    held_out = trainer.evaluate(trainer.data.x_test[: trainer.cfg.val_images])
    scores = {test_metric(k): v for k, v in held_out.items() if k.startswith("val_")}
    scores.update({test_metric(k): v for k, v in evaluator.evaluate(trainer.reconstruct).items()})
    return scores


# --- mock trainable: the search machinery without training ------------------------------

# The known best weight of each loss in the mock (not on the paper's grid on purpose).
MOCK_BEST_W = {"psnr": 0.05, "ssim": 2.0, "ms_ssim": 3.0, "haarpsi": 0.1, "gmsd": 2.0,
               "ms_gmsd": 0.02}
MOCK_BASELINE = 1.0  # final objective of the plain-MSE baseline
MOCK_NO_MSE = 1.5  # final objective of the "no MSE" variant (worse than the baseline)
MOCK_FLOOR = 0.2  # final objective at the best w (so the best gains 80% over the baseline)
MOCK_SEED_NOISE = 0.01  # amplitude of the mock's seed dependence (none for seed 0)


def mock_final_objective(config: dict) -> float:
    """Final objective of the mock: (log10 w - log10 w*)^2 + floor, plus small noise."""
    name, w, with_mse = loss_settings(config)
    # Seed "noise" (0 for seed 0): --seeds re-runs differ a little, like real training runs.
    seed_noise = MOCK_SEED_NOISE * math.sin(float((config.get("train") or {}).get("seed", 0)))
    if name == "mse":
        return MOCK_BASELINE + seed_noise
    if not with_mse:
        return MOCK_NO_MSE + seed_noise
    value = MOCK_FLOOR + (math.log10(w) - math.log10(MOCK_BEST_W.get(name, 1.0))) ** 2
    # Deterministic "noise": a fixed function of w, +-1% of the floor.
    noise = 0.01 * MOCK_FLOOR * math.sin(1e3 * math.log(w))
    return value + noise + seed_noise


def mock_objective(config: dict, epoch: int, epochs: int) -> float:
    """Learning curve of the mock: starts 1.0 above the final value, decays like 1/epoch."""
    return mock_final_objective(config) + (1.0 / epoch - 1.0 / epochs)


def mock_trainable(config: dict, data=None) -> None:
    """A cheap deterministic stand-in for `train_vqvae`: same metrics, checkpoints, faults."""
    from .errors import DivergedError

    _quiet()
    epochs = int(config["train"]["epochs"])
    state = {"epoch": 0}

    def load(d):
        with open(os.path.join(d, "mock.json")) as f:
            state.update(json.load(f))

    def save(d):
        with open(os.path.join(d, "mock.json"), "w") as f:
            json.dump(state, f)

    restored = _restore_state(load)
    if restored:
        state["epoch"] = restored["epoch"]
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
                tune.report(_diverged(e.epoch, e))
                return
            value = mock_objective(config, epoch, epochs)
            state["epoch"] = epoch
            metrics = {name: 0.0 for name in TRAINER_METRICS}
            metrics.update(
                epoch=float(epoch), fid=100 * value, swd=value, val_mse=0.01 * value,
                val_recon=value, val_psnr=30 - value, val_ssim=1 - value / 10,
                train_loss=value, images_per_s=1e4, step_ms=1.0, recon_loss_ms=0.1,
                perplexity=20.0, codes_used=0.5, eval_epoch=float(epoch), diverged=0.0,
                node_id=_node(),
            )
            if epoch == epochs and config["train"]["data"].get("holdout"):
                # With a holdout the test split scores a little worse (selection on val).
                worse = {"fid": 1.05, "swd": 1.05, "val_mse": 1.05, "val_psnr": 0.95, "val_ssim": 0.95}
                metrics.update({test_metric(k): f * metrics[k] for k, f in worse.items()})
            metrics["objective"] = objective_value(metrics, config["objective"])
            writer.add_scalar("val/objective", metrics["objective"], epoch)
            writer.flush()
            _report(metrics, {"epoch": epoch, "last_eval": {}}, save)
    finally:
        writer.close()
