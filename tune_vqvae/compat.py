"""The private Optuna and Ray names the core and the trial workers use (no ray import here: the
surrogate and the sampler run where ray is not installed); the search layer's are in
search/_compat.py.
tests/test_search_compat.py checks every one against the installed versions, so an upgrade
that breaks one fails there, by name. Checked with optuna 5.0.
"""

from __future__ import annotations

import logging

import numpy as np


def fit_gp(X: np.ndarray, Y: np.ndarray, log_prior, minimum_noise: float):
    """Optuna's GP (the model behind GPSampler) fitted by MAP to (X, Y): X of shape (n, d) in
    [0, 1] units, Y standardised, kernel parameters under `log_prior(gpr) -> tensor`.

    Relies on `optuna._gp.gp.fit_kernel_params(X, Y, is_categorical, log_prior,
    minimum_noise, deterministic_objective)` returning a `GPRegressor` with tensor attributes
    `inverse_squared_lengthscales`, `kernel_scale`, `noise_var` (Optuna 4.x-5.0). Optuna's GP
    is written in torch, so torch is imported on first use only."""
    from optuna._gp import gp

    return gp.fit_kernel_params(X=X, Y=Y, is_categorical=np.zeros(X.shape[1], dtype=bool),
                                log_prior=log_prior, minimum_noise=minimum_noise,
                                deterministic_objective=False)


def gp_posterior(gpr, x, joint: bool):
    """`GPRegressor.posterior(x, joint) -> (mean, covariance if joint else variance)`."""
    return gpr.posterior(x, joint=joint)


def quiet_ray_storage_logs() -> None:
    """Ray logs a line per persisted checkpoint (one per epoch) from the logger of its private
    module `ray.train._internal.storage`: keep a worker's console readable."""
    logging.getLogger(RAY_STORAGE_LOGGER).setLevel(logging.WARNING)


RAY_STORAGE_LOGGER = "ray.train._internal.storage"


def fixed_params(trial) -> dict:
    """The parameters `Study.enqueue_trial` fixed for a trial (asked or not yet sampled).

    Relies on `FrozenTrial.system_attrs["fixed_params"]`, where Optuna keeps them."""
    return trial.system_attrs.get("fixed_params", {})


# Optuna keeps a trial's constraint values (<= 0 feasible) in its system attrs under this key:
# `optuna.study._constrained_optimization._CONSTRAINTS_KEY`, a list of floats (Optuna 4.x;
# Optuna 5 still reads that list besides its own "constraints:<name>" keys).
CONSTRAINTS_KEY = "constraints"


def constraint_attrs(values) -> dict:
    """The system attrs that give a trial made by `optuna.trial.create_trial` its constraint
    values, read by GPSampler's constrained acquisition (log EI times P(feasible))."""
    return {CONSTRAINTS_KEY: [float(v) for v in values]}


def stored_constraints(trial) -> list[float]:
    """A trial's constraint values as `constraint_attrs` stored them."""
    return list(trial.system_attrs.get(CONSTRAINTS_KEY, ()))


def constrained_gp_kwargs() -> dict:
    """What GPSampler needs to model the constraints its study's trials carry.

    Optuna 5 detects constrained optimisation from the completed trials' constraints: nothing.
    Optuna 4.2-4.x models them only when given a `constraints_func` (experimental there; it
    then reads the trials' system attrs): one that returns the stored values. Optuna 4.0/4.1's
    GPSampler has no constraints (no such argument): unconstrained, the answer's
    constrained recommendation still applies the budget."""
    import inspect

    import optuna

    if int(optuna.__version__.split(".")[0]) >= 5:
        return {}
    if "constraints_func" in inspect.signature(optuna.samplers.GPSampler).parameters:
        return {"constraints_func": stored_constraints}
    return {}
