"""Every use of a private Ray or Optuna attribute, in one place, each saying what it relies on.

Ray and Optuna may rename these in any release. tests/test_search_compat.py checks each one
against the installed versions, so an upgrade that breaks one fails there, by name, rather
than as a wrong table or a hung Ctrl-C in a long search. Checked with ray 2.60, optuna 5.0.
The private names the core and the trial workers use (Optuna's GP, enqueued parameters, Ray's
storage logger) are in tune_vqvae/compat.py, which imports no ray; the same test file checks them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import optuna
import ray


def trial_statuses(grid) -> dict[str, str]:
    """Ray trial id -> Tune status (TERMINATED, ERROR, ...) of the trials of a ResultGrid.

    Relies on `ResultGrid._experiment_analysis.trials` (the Trial objects the grid was built
    from): a Result has no status. Without it every trial reads as TERMINATED."""
    try:
        return {t.trial_id: t.status for t in grid._experiment_analysis.trials}
    except AttributeError:
        return {}


# --- OptunaSearch (ray.tune.search.optuna), which WeightSearch extends ---------------------

def searcher_study(searcher) -> optuna.Study:
    """Relies on `OptunaSearch._ot_study`: the study it asks and tells."""
    return searcher._ot_study


def searcher_trials(searcher) -> dict:
    """Relies on `OptunaSearch._ot_trials`: Ray trial id -> the optuna.Trial it asked."""
    return searcher._ot_trials


def searcher_told(searcher) -> set:
    """Relies on `OptunaSearch._completed_trials`: the Ray trial ids already told to Optuna
    (adding one makes OptunaSearch ignore that trial's later results)."""
    return searcher._completed_trials


def set_stored_user_attr(study: optuna.Study, trial: optuna.trial.FrozenTrial, key: str, value) -> None:
    """A user attribute of a trial read from storage (not asked by this process).

    Optuna's public API sets user attributes only through the live Trial of `ask`; relies on
    `Study._storage` and `FrozenTrial._trial_id` (the storage's id of the trial)."""
    study._storage.set_trial_user_attr(trial._trial_id, key, value)


# --- ASHAScheduler (ray.tune.schedulers) ---------------------------------------------------

def asha_uncount_stop(scheduler) -> None:
    """Take back one STOP decision from ASHA's count of stopped trials (its debug string);
    relies on `AsyncHyperBandScheduler._num_stopped`."""
    scheduler._num_stopped -= 1


# --- Ctrl-C in experiments that run in threads ---------------------------------------------

def route_tune_sigint(stop_event: Callable[[], threading.Event | None]) -> None:
    """Let Ctrl-C stop the Tune loops running in our threads the way Tune stops its own.

    Tune installs its SIGINT handler (which ends the loop after a last experiment snapshot,
    so a resumed search re-runs nothing that finished) only in the main thread. Relies on
    `ray.tune.tune._setup_signal_catching() -> threading.Event`, which each Tune loop calls
    once and polls: in a thread, ours returns `stop_event()` (an event the caller sets on
    Ctrl-C) instead. `stop_event` returns None where Tune's own behaviour should stay. If a
    future Ray renames the hook, Ctrl-C still works, only without the last snapshot (resume
    then repeats at most the epochs since the previous one). Installed once per process.
    """
    import ray.tune.tune as tune_module

    original = getattr(tune_module, "_setup_signal_catching", None)
    if original is None or getattr(original, "tune_vqvae", False):
        return

    def setup_signal_catching():
        event = stop_event()
        return original() if event is None else event

    setup_signal_catching.tune_vqvae = True
    tune_module._setup_signal_catching = setup_signal_catching


# --- Ray's environment switches --------------------------------------------------------------

# Read by Tune when a run starts (ray.tune.constants, ray.tune.tune): the classic console
# reporter (which prints nothing at verbose=0) instead of per-experiment banners; no "may become
# a bottleneck" warning for the experiment snapshot Tune takes at every checkpoint (wanted: a
# killed driver loses nothing).
TUNE_QUIET_ENV = {"RAY_AIR_NEW_OUTPUT": "0",
                  "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}
# Ray's token authentication (ray._private.authentication): off for a private local cluster on
# 127.0.0.1, which nothing else can reach.
LOCAL_AUTH_ENV = {"RAY_AUTH_MODE": "disabled"}


def set_env_defaults(switches: dict) -> None:
    """The switches, where the user has not set them."""
    for key, value in switches.items():
        os.environ.setdefault(key, value)


# --- a private local cluster ---------------------------------------------------------------

def init_local_ray(num_cpus: int | None, runtime_env: dict | None = None) -> None:
    """A new local Ray bound to 127.0.0.1 (never the machine's public address); relies on
    `ray.init(_node_ip_address=...)`, the private form of `ray start --node-ip-address`.
    `address="local"`: without it ray.init joins any cluster already running on the machine
    (another search's), which `--address` is for."""
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="WARNING", configure_logging=True, runtime_env=runtime_env)
