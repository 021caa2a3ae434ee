"""Fault injection for tests, driven by the trial config's `faults` (the search's hidden
`--faults JSON`): crashes, killed workers, NaN losses and metrics, damaged checkpoints, slow
or paused epochs. Both trainables (`tune_vqvae.trainable.train_vqvae` and the mock in
`tune_vqvae.testing`) call it before every epoch, so it lives below both, without ray: a Ray
worker imports it by module name wherever the search runs.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from ..errors import DivergedError


class InjectedCrash(RuntimeError):
    """Raised by `inject_faults` to simulate a trial process failing at an epoch."""


def _trial_key() -> str:
    from ray import tune  # only a trial with a crash or kill fault gets here: ray is there

    with warnings.catch_warnings():  # outside a trial (unit tests) Ray warns, returns None
        warnings.simplefilter("ignore")
        return tune.get_context().get_trial_id() or "local"


def _active_faults(config: dict) -> list[dict]:
    """The trial's faults (config["faults"]: a dict or a list), those with `only_w` for this w."""
    faults = config.get("faults") or []
    return [f for f in (faults if isinstance(faults, list) else [faults])
            if "only_w" not in f or config.get("w") == f["only_w"]]


def inject_nan_metric(config: dict, epoch: int, metrics: dict) -> None:
    """The fault {"nan_metric": NAME, "nan_metric_at_epoch": k}: the epoch's metric NAME is
    NaN (a loss that is NaN on the evaluation images), every time (deterministic)."""
    for fault in _active_faults(config):
        if fault.get("nan_metric") and fault.get("nan_metric_at_epoch") == epoch:
            metrics[fault["nan_metric"]] = float("nan")


def damaged_checkpoint(config: dict, epoch: int) -> bool:
    """The fault {"damage_checkpoint_at_epoch": k}: the mock writes epoch k's checkpoint damaged
    (a later restore from it fails)."""
    return any(f.get("damage_checkpoint_at_epoch") == epoch for f in _active_faults(config))


def inject_faults(config: dict, epoch: int) -> None:
    """Fault injection for tests, before training epoch `epoch` (1-based).

    config["faults"]: one dict or a list of them, each
        {"crash_at_epoch": k, "kill_at_epoch": k, "nan_at_epoch": k, "sleep_s": s,
         "pause_while": FILE, "marker_dir": DIR, "only_w": w}
    (and "nan_metric": NAME, "nan_metric_at_epoch": k: see `inject_nan_metric`;
    "damage_checkpoint_at_epoch": k: see `damaged_checkpoint`)
    crash (raise) and kill (the worker process exits) happen once per trial and epoch (a
    marker file in marker_dir remembers), so the retry from the checkpoint succeeds; nan
    happens every time (divergence is deterministic). `only_w` restricts a fault to the
    trial with that weight. `pause_while`: the trial waits (at most 10 minutes) while FILE
    exists, so a test can hold a search at a known point without racing it.
    """
    for fault in _active_faults(config):
        if fault.get("sleep_s"):
            time.sleep(float(fault["sleep_s"]))
        deadline = time.monotonic() + 600
        hold = Path(fault["pause_while"]) if fault.get("pause_while") else None
        while hold is not None and hold.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
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
