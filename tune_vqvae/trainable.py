"""The Ray Tune trainable: `train_vqvae`, one trial around the core `Trainer`.

A trial's config (built by `tune_vqvae.search`):

    train      TrainConfig as a dict (`dataclasses.asdict`); its `loss` is replaced by ...
    loss       the perceptual loss this experiment searches (e.g. "gmsd")
    role       "search" (a point of a loss's search) or "baseline" (plain MSE), see vocab
    with_mse   bool: mse + w * loss (True) or loss alone (False)      <- Optuna
    w          float weight, only for with_mse trials (None otherwise) <- Optuna
    w1, w2     a joint loss's weights ("ssim+gmsd": mse + w1*ssim + w2*gmsd; w None) <- Optuna
    objective  the reported metric the search minimises ("fid" or "swd", or any metric)
    fid        FIDConfig as a dict (weights path resolved by the driver; fid_mode "off"
               when no weights: then only the offline `swd` is computed)
    eval_every FID/SWD every N epochs (and always at the last epoch)
               With a holdout (DataConfig.holdout) the objective is measured on the
               held-out training images, and the last epoch also reports the same metrics
               on the test split as test_fid, test_swd, test_mse, test_psnr, test_ssim,
               test_recon (vocab.TEST_METRICS).
    cpus       torch threads of the trial
    faults     fault injection for the reliability tests, see `tune_vqvae.train.faults`

Every epoch is reported once with a checkpoint (Ray's checkpoint API), so a trial can be
paused, stopped early by ASHA, retried after a crash from its last epoch (FailureConfig)
and resumed after the driver dies (`Tuner.restore`). A diverging trial
(NaN/inf in any metric it would report: the loss, a plugin's val_recon on evaluation, FID)
reports one last result with `diverged = 1` and `objective = NaN` and ends: the searcher
marks its Optuna trial FAIL, and it is not retried (divergence is deterministic).

The dataset reaches the trials through the object store (`tune.with_parameters`, see
`tune_vqvae.search`), never inside the config. The mock trainable (tests, `--mock`) is
in `tune_vqvae.testing`.

This module imports ray at the top, but torch and the core only inside the trainable, so
mock trials (which use its reporting helpers) start in a fraction of a second.
"""

from __future__ import annotations

import json
import os
import tempfile

import ray
from ray import tune

from . import compat, objectives
from .vocab import (
    CHECKPOINT_FILE,
    TRIAL_STATE_FILE,
    joint_weights,
    loss_settings,
    test_metric,
)

# Metrics the Trainer reports every epoch (the mock reports them too).
TRAINER_METRICS = (
    "epoch", "train_loss", "train_recon", "train_mse", "train_vq", "train_commit",
    "val_mse", "val_psnr", "val_ssim", "val_recon", "perplexity", "codes_used",
    "images_per_s", "step_ms", "recon_loss_ms", "epoch_s",
)


def node_id() -> str:
    """The Ray node a trial runs on (reported, so tests and users can see the spread)."""
    return ray.get_runtime_context().get_node_id()


def report_epoch(metrics: dict, state: dict, save) -> None:
    """Report one epoch with a checkpoint: `save(dir)` writes the trainer's state; `state`
    (epoch, last evaluation) gets every result reported so far, this one included."""
    state.setdefault("reported", []).append(metrics)  # the caller's list: it grows per epoch
    with tempfile.TemporaryDirectory() as d:
        save(d)
        with open(os.path.join(d, TRIAL_STATE_FILE), "w") as f:
            json.dump(state, f)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


class DamagedCheckpoint(RuntimeError):
    """The trial's last checkpoint cannot be read: retrying would read the same file again, so
    the trial ends once, as failed (`failed_result`), with this one line."""


def restore_state(load) -> dict | None:
    """Load the last checkpoint of this trial (after a retry or a resumed search);
    DamagedCheckpoint if it (or `load`) cannot read it."""
    from .errors import UserError  # the core's error, raised by Trainer.load_checkpoint

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    try:
        with checkpoint.as_directory() as d:
            load(d)
            with open(os.path.join(d, TRIAL_STATE_FILE)) as f:
                return json.load(f)
    except (UserError, OSError, ValueError, KeyError) as e:  # ValueError: JSONDecodeError
        raise DamagedCheckpoint(f"cannot resume from the trial's checkpoint {checkpoint.path} "
                                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                                f"the trial is not retried") from None


def failed_result(error: Exception) -> dict:
    """The last report of a trial that cannot go on (a damaged checkpoint): FAIL in Optuna,
    ERROR in the results, never retried."""
    return {"failed": 1.0, "objective": float("nan"), "error": str(error)}


def quiet_logs() -> None:
    """Ray logs a line per persisted checkpoint (one per epoch): keep the console readable."""
    compat.quiet_ray_storage_logs()


def diverged_result(epoch: int, error: Exception) -> dict:
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

    from .errors import DivergedError, check_finite
    from .losses import LossConfig
    from .metrics import FIDConfig, FIDEvaluator
    from .train import TrainConfig, Trainer
    from .train.faults import inject_faults

    quiet_logs()
    torch.set_num_threads(max(1, int(config.get("cpus", 1))))
    cfg = TrainConfig.from_dict(config["train"])
    name, w, with_mse = loss_settings(config)
    weights = joint_weights(config)  # a joint loss (ssim+gmsd): its w1, w2
    cfg.loss = LossConfig(name=name, weight=w, with_mse=with_mse, weights=list(weights) if weights else None)
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

    try:
        state = restore_state(lambda d: trainer.load_checkpoint(os.path.join(d, CHECKPOINT_FILE)))
    except DamagedCheckpoint as e:
        trainer.close()
        tune.report(failed_result(e))
        return
    last_eval = (state or {}).get("last_eval", {})
    reported = (state or {}).get("reported", [])
    try:
        while trainer.epoch < cfg.epochs:
            try:  # an injected NaN takes the path of a real one (tests)
                inject_faults(config, trainer.epoch + 1)
                metrics = trainer.train_epoch()
                epoch = trainer.epoch
                # Always at the first epoch too: every report needs an objective (ASHA, Optuna);
                # between evaluation epochs the last evaluation is reported again.
                if not last_eval or epoch % eval_every == 0 or epoch == cfg.epochs \
                        or not objectives.get(objective).evaluated:
                    last_eval = evaluator.evaluate(trainer.reconstruct, halves=epoch == cfg.epochs)
                    last_eval["eval_epoch"] = float(epoch)
                metrics.update(last_eval)
                if held_out and epoch == cfg.epochs:
                    metrics.update(_test_scores(trainer, test_evaluator))
                metrics.update(objectives.get(objective).report(metrics))
                check_finite(metrics, epoch)  # a NaN FID or test score is divergence too
            except DivergedError as e:
                tune.report(diverged_result(e.epoch, e))
                return
            metrics["diverged"] = 0.0
            report_epoch(
                {**{k: float(v) for k, v in metrics.items()}, "node_id": node_id()},
                {"epoch": epoch, "last_eval": last_eval, "reported": reported},
                lambda d: trainer.save_checkpoint(os.path.join(d, CHECKPOINT_FILE), durable=False),
            )
    finally:
        trainer.close()


def _test_scores(trainer, evaluator) -> dict:
    """The final model on the test split: FID/SWD and the val_* metrics as test_*."""
    held_out = trainer.evaluate(trainer.data.x_test[: trainer.cfg.val_images])
    scores = {test_metric(k): v for k, v in held_out.items() if k.startswith("val_")}
    scores.update({test_metric(k): v for k, v in evaluator.evaluate(trainer.reconstruct).items()})
    return scores
