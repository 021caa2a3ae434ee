"""Running the experiments of a search side by side, one thread each, and their console output.

Each Tune experiment drives its own trial loop, so each runs in a thread of its own and Ray
shares the cluster among them. The state of a run (set up yet? interrupted?) belongs to its
`ExperimentThread`, which the Tune callbacks and hooks running inside it find as the
current thread.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable

import optuna
from ray import tune

from .. import objectives
from ..errors import Terminated, UserError
from ..vocab import config_label
from . import _compat

_print_lock = threading.Lock()


def say(*parts) -> None:
    """print, one whole line at a time from any experiment's thread."""
    with _print_lock:
        print(*parts, flush=True)


def quiet_console() -> None:
    """Our Progress callback prints one line per epoch; silence the chatter around it."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # The GP fit runs inside the define-by-run space function (it samples w), not training.
    warnings.filterwarnings("ignore", message="Define-by-run function passed")
    _compat.set_env_defaults(_compat.TUNE_QUIET_ENV)


class ExperimentThread(threading.Thread):
    """The thread of one experiment: `set_up` is set once its Tune loop is set up (see
    `run_experiments`); `stop` is the run's Ctrl-C event, which Tune's loop polls."""

    def __init__(self, name: str, fn: Callable, stop: threading.Event):
        super().__init__(name=f"tune-{name}", daemon=True)
        self.experiment, self.fn, self.stop = name, fn, stop
        self.set_up = threading.Event()
        self.result = self.error = None

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as e:  # re-raised by run_experiments, in the main thread
            self.error = e


def current_experiment() -> ExperimentThread | None:
    thread = threading.current_thread()
    return thread if isinstance(thread, ExperimentThread) else None


def _stop_event() -> threading.Event | None:
    thread = current_experiment()
    return thread.stop if thread is not None else None


class Progress(tune.Callback):
    """One line per reported epoch and per finished trial, prefixed by the experiment.

    Tune pickles it with the experiment (a restored one gets it back), so it holds only
    plain values; the thread it runs in carries the run's state."""

    def __init__(self, experiment: str, epochs: int, objective: str):
        self.experiment, self.epochs, self.objective = experiment, epochs, objective

    def setup(self, **info):
        thread = current_experiment()
        if thread is not None:
            thread.set_up.set()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("diverged"):
            say(f"[{self.experiment}] {trial.trial_id} {config_label(trial.config)}: DIVERGED at "
                f"epoch {int(result.get('epoch', 0))}: {result.get('error', '')}")
            return
        if result.get("failed"):
            say(f"[{self.experiment}] {trial.trial_id} {config_label(trial.config)}: FAILED: "
                f"{result.get('error', '')}")
            return
        say(f"[{self.experiment}] {trial.trial_id} {config_label(trial.config)}: epoch "
            f"{int(result.get('epoch', 0))}/{self.epochs}  {self.objective} "
            f"{objectives.get(self.objective).value_of(result):.4g}  "
            f"val_psnr {result.get('val_psnr', float('nan')):.2f}")

    def on_trial_error(self, iteration, trials, trial, **info):
        say(f"[{self.experiment}] {trial.trial_id} {config_label(trial.config)}: ERROR "
            f"(attempt {trial.num_failures}): {str(trial.error_file or '')}")


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # short waits: the main thread must stay responsive to Ctrl-C


def run_experiments(jobs: dict[str, Callable]) -> dict:
    """Run {name: callable -> ResultGrid} concurrently; returns {name: ResultGrid}."""
    stop = threading.Event()
    _compat.route_tune_sigint(_stop_event)
    # Tune's setup (registering the trainable in Ray's global registry) is not thread-safe:
    # start the next experiment only once the previous one's loop is set up (its Progress
    # callback's `setup`); from then on they run concurrently.
    threads = []
    try:
        for name, fn in jobs.items():
            t = ExperimentThread(name, fn, stop)
            t.start()
            threads.append(t)
            while t.is_alive() and not t.set_up.wait(0.2):
                pass
        _join(threads)
    except KeyboardInterrupt as e:
        what, again = ("terminated", "SIGTERM") if isinstance(e, Terminated) else ("interrupted", "Ctrl-C")
        say(f"{what}: saving the experiment state ({again} again to quit at once)")
        stop.set()
        _join(threads)
        raise
    for t in threads:
        if t.error is None:
            continue
        if isinstance(t.error, (OSError, UserError)):  # e.g. a full disk: main makes it exit 2
            raise t.error
        raise RuntimeError(f"experiment {t.experiment} failed: {t.error}") from t.error
    return {t.experiment: t.result for t in threads}
