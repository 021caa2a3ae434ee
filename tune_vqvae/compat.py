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
