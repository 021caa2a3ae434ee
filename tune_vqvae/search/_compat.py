"""Every use of a private Ray or Optuna attribute, in one place, each saying what it relies on.

Ray and Optuna may rename these in any release. tests/test_search_compat.py checks each one
against the installed versions, so an upgrade that breaks one fails there, by name, rather
than as a wrong table or a hung Ctrl-C in a long search. Checked with ray 2.60, optuna 5.0.
The private names the core and the trial workers use (Optuna's GP, enqueued parameters, Ray's
storage logger) are in tune_vqvae/compat.py, which imports no ray; the same test file checks them.
"""

from __future__ import annotations

import contextlib
import io
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


# --- SIGTERM in the driver -------------------------------------------------------------------

def leave_sigterm_to_python() -> None:
    """The driver's SIGTERM is ours (a graceful stop, like Ctrl-C), not a crash.

    Ray's core worker installs Abseil's failure-signal handler for SIGTERM too, which prints a
    C++ stack and aborts. Relies on `ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER` (what
    the environment variable of that name sets), read when ray.init builds this process's
    core worker; set on the module, it leaves the workers' crash reports as they are."""
    from ray._private import ray_constants

    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


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

def init_local_ray(num_cpus: int | None, runtime_env: dict | None = None,
                   temp_dir: str | None = None) -> None:
    """A new local Ray whose every process listens on 127.0.0.1 only.

    `_node_ip_address="127.0.0.1"` (the private form of `ray start --node-ip-address`) is
    not enough: on Linux Ray replaces a loopback address by the machine's own
    (`services.resolve_ip_for_localhost`) and its servers then listen on every interface.
    Ray keeps 127.0.0.1 only where it thinks clusters are unsupported: relies on
    `ray_constants.ENABLE_RAY_CLUSTER` (read by the driver at each call) and its environment
    variable `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER` (read by every Ray process this one starts).
    tests/test_security.py lists the listening sockets of a local search and fails on any
    other address. `address="local"`: without it ray.init joins any cluster already running
    on the machine (another search's), which `--address` is for."""
    from ray._private import ray_constants

    # Only while Ray starts its processes (they keep the variable; the workers inherit the
    # raylet's): this process's later `ray start`s and clusters are left as Ray makes them.
    saved = os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 _temp_dir=temp_dir, logging_level="WARNING", configure_logging=True,
                 runtime_env=runtime_env)
    finally:
        if saved[0] is None:
            os.environ.pop(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = saved[0]
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]


# --- W&B (ray.air.integrations.wandb) ------------------------------------------------------

def wandb_api_key_found() -> bool:
    """Whether WandbLoggerCallback will find an API key (or needs none: WANDB_MODE offline or
    disabled), asked before Ray starts rather than at the first experiment's setup. Relies on
    `ray.air.integrations.wandb._set_api_key(api_key_file, api_key)`, which raises ValueError
    when it finds none (env, `wandb login`, or Ray's key hook). Its look-up reads files only
    (wandb.login would ask the server); wandb 0.2x+ warns on stderr that this look-up is
    deprecated, which a user cannot act on: kept out of the one error line."""
    from ray.air.integrations.wandb import _set_api_key

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            _set_api_key(None, None)
    except ValueError:
        return False
    return True
