"""Each private Ray/Optuna attribute tune_vqvae.search._compat and tune_vqvae.compat rely on
still exists and means what we use it for: an upgrade that breaks one fails here, by name."""

from __future__ import annotations

import inspect
import os
import threading
from types import SimpleNamespace

import optuna

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters
import ray  # noqa: E402
from ray.tune import ResultGrid  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402
from ray.tune.search.optuna import OptunaSearch  # noqa: E402

from tune_vqvae.search import _compat, _runner  # noqa: E402


def test_result_grid_keeps_the_trials_it_was_built_from():
    analysis = SimpleNamespace(trials=[])
    grid = ResultGrid(analysis)
    analysis.trials = [SimpleNamespace(trial_id="t1", status="ERROR"),
                       SimpleNamespace(trial_id="t2", status="TERMINATED")]
    assert _compat.trial_statuses(grid) == {"t1": "ERROR", "t2": "TERMINATED"}


def space(trial):
    trial.suggest_float("w", 0.1, 1.0)


def test_optuna_search_exposes_its_study_trials_and_told_set():
    searcher = OptunaSearch(space=space, metric="objective", mode="min",
                            sampler=optuna.samplers.RandomSampler(seed=0))
    assert searcher.suggest("a") is not None
    study = _compat.searcher_study(searcher)
    assert isinstance(study, optuna.Study)
    assert isinstance(_compat.searcher_trials(searcher)["a"], optuna.Trial)
    assert "a" not in _compat.searcher_told(searcher)
    searcher.on_trial_complete("a", {"objective": 0.5})
    assert "a" in _compat.searcher_told(searcher)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE


def test_a_stored_trial_gets_a_user_attribute():
    study = optuna.create_study()
    study.ask()
    _compat.set_stored_user_attr(study, study.trials[0], "orphaned", "yes")
    assert study.trials[0].user_attrs == {"orphaned": "yes"}


def test_asha_counts_the_trials_it_stopped():
    asha = ASHAScheduler(time_attr="epoch", max_t=3, grace_period=1)
    assert asha._num_stopped == 0  # the counter _compat.asha_uncount_stop takes back
    _compat.asha_uncount_stop(asha)
    assert asha._num_stopped == -1


def test_tune_loops_in_experiment_threads_poll_the_runs_stop_event():
    import ray.tune.tune as tune_module

    assert "_setup_signal_catching()" in inspect.getsource(tune_module.run)  # Tune's loop asks it
    _compat.route_tune_sigint(_runner._stop_event)
    stop, seen = threading.Event(), []
    thread = _runner.ExperimentThread("x", lambda: seen.append(tune_module._setup_signal_catching()),
                                      stop)
    thread.start()
    thread.join()
    assert seen == [stop]
    # outside an experiment thread Tune's own handler stays (an Event it sets on SIGINT)
    assert isinstance(tune_module._setup_signal_catching(), threading.Event)
    assert tune_module._setup_signal_catching() is not stop


def test_ray_init_takes_the_local_node_address():
    # a keyword of ray.init's **kwargs: its source reads it (ray.init(_node_ip_address=...))
    assert 'kwargs.pop("_node_ip_address"' in inspect.getsource(ray.init)


def test_ray_keeps_loopback_only_where_clusters_are_off():
    """init_local_ray relies on these: the driver's switch, its environment variable (every
    Ray process reads it), and the node address read through the switch at each call."""
    from ray._private import ray_constants, services

    assert isinstance(ray_constants.ENABLE_RAY_CLUSTER, bool), "ray_constants.ENABLE_RAY_CLUSTER moved"
    assert ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR == "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    assert "ray_constants.ENABLE_RAY_CLUSTER" in inspect.getsource(services.get_node_ip_address), \
        "services.get_node_ip_address no longer reads ray_constants.ENABLE_RAY_CLUSTER"


def test_the_drivers_failure_signal_handler_can_be_turned_off():
    """leave_sigterm_to_python relies on this module attribute, read when ray.init builds the
    driver's core worker (CoreWorker options in Ray's Cython code)."""
    from ray._private import ray_constants

    assert isinstance(ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER, bool), \
        "ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER moved: SIGTERM would dump a C++ stack again"


def test_optuna_search_tells_an_early_stopped_trial_complete():
    """The upstream behaviour WeightSearch overrides (optuna/optuna#3100): Ray's OptunaSearch
    tells a trial COMPLETE with whatever value it last reported, at any epoch. If this test
    fails, Ray learned fidelity and WeightSearch.on_trial_complete may be simplified."""
    searcher = OptunaSearch(space=space, metric="objective", mode="min",
                            sampler=optuna.samplers.RandomSampler(seed=0))
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"objective": 9.0, "epoch": 1, "training_iteration": 1})
    trial = _compat.searcher_study(searcher).trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 9.0


def test_ray_wandb_key_lookup_raises_without_a_key_and_passes_offline(no_wandb_key, monkeypatch, capsys):
    assert _compat.wandb_api_key_found() is False
    assert capsys.readouterr().err == ""  # wandb's deprecation warning kept out
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert _compat.wandb_api_key_found() is True
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert _compat.wandb_api_key_found() is True


# --- tune_vqvae/compat.py: the private names the core and the trial workers use --------------

def test_optuna_gp_private_api_is_as_expected():
    """Fails loudly when an Optuna upgrade changes what compat.fit_gp / gp_posterior rely on."""
    import numpy as np
    from optuna._gp import gp

    from tune_vqvae.stats import surrogate

    where = f"optuna {optuna.__version__} changed its private GP API: update tune_vqvae/compat.py"
    params = inspect.signature(gp.fit_kernel_params).parameters
    for name in ("X", "Y", "is_categorical", "log_prior", "minimum_noise", "deterministic_objective"):
        assert name in params, f"{where} (fit_kernel_params lost {name!r})"
    assert "joint" in inspect.signature(gp.GPRegressor.posterior).parameters, where
    x = np.linspace(0, 1, 12)
    y = np.sin(3 * x) + 0.1 * np.random.default_rng(0).normal(size=12)
    grid = np.linspace(0, 1, 21)
    mean, root, noise_var, length_scale = surrogate._optuna_gp_posterior(x, (y - y.mean()) / y.std(), grid)
    assert mean.shape == (21,) and root.shape[0] == 21, where
    assert np.all(np.isfinite(mean)) and noise_var > 0 and length_scale > 0, where
    assert np.corrcoef(mean, np.sin(3 * grid))[0, 1] > 0.9, where


def test_enqueued_parameters_are_kept_as_fixed_params():
    """compat.fixed_params reads `system_attrs["fixed_params"]`, where the sampler sees that
    the no-MSE point was enqueued before Optuna samples it."""
    from tune_vqvae import compat

    study = optuna.create_study()
    study.enqueue_trial({"with_mse": False})
    study.ask()
    (trial,) = study.get_trials(deepcopy=False)
    assert compat.fixed_params(trial) == {"with_mse": False}, \
        f"optuna {optuna.__version__} no longer keeps enqueued parameters in system_attrs['fixed_params']"


def test_a_created_trials_constraints_are_the_system_attr_gp_sampler_reads():
    """compat.constraint_attrs stores a trial's budget slack where Optuna keeps constraints
    (`optuna.study._constrained_optimization._CONSTRAINTS_KEY`), and GPSampler, built with
    compat.constrained_gp_kwargs(), models them (issue 24: the sampler's shadow study)."""
    from optuna.study import _constrained_optimization

    from tune_vqvae import compat

    where = f"optuna {optuna.__version__} moved its trial constraints: update tune_vqvae/compat.py"
    assert compat.CONSTRAINTS_KEY == _constrained_optimization._CONSTRAINTS_KEY, where
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(
        seed=0, n_startup_trials=3, **compat.constrained_gp_kwargs()))
    for x in (0.1, 0.3, 0.5, 0.7, 0.9):  # the objective falls with x; x > 0.4 is infeasible
        study.add_trial(optuna.trial.create_trial(params={"x": x}, distributions={"x": dist}, value=-x,
                                                  system_attrs=compat.constraint_attrs([x - 0.4])))
    stored = [compat.stored_constraints(t) for t in study.trials]
    assert stored == [[x - 0.4] for x in (0.1, 0.3, 0.5, 0.7, 0.9)], where
    if hasattr(optuna.trial.FrozenTrial, "constraints"):  # Optuna 5 reads them as the trial's
        assert list(study.trials[0].constraints.values()) == [0.1 - 0.4], where
    assert study.ask({"x": dist}).params["x"] < 0.6, where  # unconstrained it would ask near 1


def test_ray_storage_logger_is_the_one_we_quiet():
    import importlib

    from tune_vqvae import compat

    module = importlib.import_module(compat.RAY_STORAGE_LOGGER)  # ImportError: Ray moved the module
    assert module.logger.name == compat.RAY_STORAGE_LOGGER, (
        f"ray {ray.__version__}: its checkpoint log lines no longer come from {compat.RAY_STORAGE_LOGGER}")


def test_ray_reads_the_environment_switches_we_set():
    import ray._private.authentication.authentication_token_setup as auth
    import ray.air.constants as air_constants
    import ray.tune.execution.experiment_state as experiment_state

    sources = {"RAY_AIR_NEW_OUTPUT": air_constants, "RAY_AUTH_MODE": auth,
               "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": experiment_state}
    for key in (*_compat.TUNE_QUIET_ENV, *_compat.LOCAL_AUTH_ENV):
        assert f'"{key}"' in inspect.getsource(sources[key]), \
            f"ray {ray.__version__} no longer reads the switch {key}"
