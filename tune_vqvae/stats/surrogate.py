"""The model of objective(w): a Gaussian process over log10 w fitted to full-length runs.

`fit_objective_curve` turns the finished trials of one loss (replicate seeds included, one
observation per run) into the answer of a search: the posterior mean of the objective over
log10 w with a 95% band, the recommended w (the minimiser of the posterior mean, not the
best single run, which is the winner's curse under 3.5% run-to-run noise), an interval on
w, and an interval on the objective at the recommended w.

The GP is Optuna's own (`optuna._gp` through tune_vqvae.compat, the model behind `GPSampler`):
Matérn-5/2 kernel on inputs scaled to [0, 1], standardised targets, kernel scale, length scale and observation
noise fitted by maximum a posteriori with L-BFGS-B. Two choices differ from GPSampler, both
because our objective is noisy rather than near-deterministic:

- The objective is modelled on a log scale (`log_objective=True`): the run-to-run noise is
  multiplicative (about 3.5% of the value whatever the value, issue 12), so on log values
  it is homoscedastic as the GP assumes, and the steep rise at large w no longer dominates
  the standardisation. exp maps the band's quantiles exactly; the curve is then the median
  objective at w, which differs from the mean by cv^2/2 (0.06% at cv = 3.5%).
- The prior on the noise variance is Gamma(1.1, rate 1) on standardised values instead of
  Optuna's Gamma(1.1, rate 30), whose mean 0.04 assumes the objective is nearly noise-free;
  with ours a curve that is flat within the noise is fitted as flat noise, not as wiggles.

Only runs that trained all epochs enter: an early-stopped (ASHA) trial's value is the
objective at another fidelity, and one such value makes small w look bad (issue 12). The
signature makes the caller state every run's completed epochs.

Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> w = 10 ** rng.uniform(-3, 1, 16)
    >>> value = 70 * (1 + 0.5 * np.maximum(np.log10(w), 0) ** 2) * (1 + 0.035 * rng.normal(size=16))
    >>> fit = fit_objective_curve(w, value, epochs_trained=[6] * 16, epochs=6, bounds=(1e-3, 10.0))
    >>> fit.recommended_w < 1.0
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import compat
from .intervals import Interval

MIN_OBSERVATIONS = 3


@dataclass(frozen=True)
class SurrogateFit:
    """The fitted model of objective(w) on a grid of log10 w, in the objective's units.

    `mean`, `low`, `high`: posterior (median) objective and its pointwise 95% band (the
    objective expected of a run at w, without the run-to-run noise). `p_min`: posterior
    probability that each grid point is the minimiser. `recommended_w`: grid minimiser of
    `mean` within the observed range of w. `w_interval`: central 95% interval of the
    posterior of the minimiser (in w). `objective`: the band at `recommended_w`.
    `noise_std`: the fitted run-to-run std of one run at the recommended w.
    `length_scale`: fitted kernel length scale in decades of w.
    """

    log10_w: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_min: np.ndarray
    recommended_w: float
    w_interval: Interval
    objective: Interval
    noise_std: float
    length_scale: float
    n_observations: int


def _fit_optuna_gp(x01: np.ndarray, y: np.ndarray):
    """Optuna's GP fitted to (x01, y): x01 of shape (n,) or (n, d) (a joint loss's log
    weights) in [0, 1] units, y standardised. -> (GPRegressor, noise variance, length scales).

    Optuna's GP is private API: reached through tune_vqvae.compat (checked by
    tests/test_search_compat.py). torch is imported on first use only.
    """
    import torch

    def log_prior(gpr) -> torch.Tensor:
        # Optuna's default_log_prior for length scales and kernel scale; a weaker noise prior
        # (see the module docstring). Gamma log densities without their constants.
        isl = gpr.inverse_squared_lengthscales
        gamma = lambda v, shape, rate: (shape - 1) * torch.log(v) - rate * v
        return -(0.1 / isl + 0.1 * isl).sum() + gamma(gpr.kernel_scale, 2, 1) + gamma(gpr.noise_var, 1.1, 1)

    X = x01[:, None] if x01.ndim == 1 else x01
    # replicates sit at identical x: a noise floor of 1% of y's std keeps the kernel matrix
    # well conditioned, where Optuna's 1e-6 can fail and fall back to defaults
    gpr = compat.fit_gp(X, y, log_prior, minimum_noise=1e-4)
    lengths = gpr.inverse_squared_lengthscales.detach().numpy() ** -0.5
    return gpr, float(gpr.noise_var), lengths


def _gp_posterior(gpr, grid01: np.ndarray, joint: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The posterior on grid01 ((m,) or (m, d)): (mean, root). joint: R with cov = R @ R.T
    (low rank, what joint draws need), decomposed in torch on one thread because numpy's
    OpenBLAS threads contend with torch's; else the column of pointwise standard deviations."""
    import torch

    x = torch.from_numpy(grid01[:, None] if grid01.ndim == 1 else grid01)
    if not joint:
        with torch.no_grad():
            mean, var = compat.gp_posterior(gpr, x, joint=False)
        return mean.numpy(), var.clamp_min(0).sqrt().numpy()[:, None]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: thread pools only contend (as in Optuna's own fit)
    try:
        with torch.no_grad():
            mean, cov = compat.gp_posterior(gpr, x, joint=True)
            # eigh, not Cholesky: the covariance of a smooth curve on a fine grid is near-singular
            eigval, eigvec = torch.linalg.eigh(cov)
    finally:
        torch.set_num_threads(threads)
    keep = eigval > 1e-10 * eigval.max()  # a smooth curve has few directions of variation
    return mean.numpy(), (eigvec[:, keep] * eigval[keep].sqrt()).numpy()


def _optuna_gp_posterior(x01: np.ndarray, y: np.ndarray, grid01: np.ndarray) -> tuple[np.ndarray, ...]:
    """One weight: Optuna's GP fitted to (x01, y) and on grid01 the posterior mean, a root R
    of the posterior covariance, the noise variance and the length scale, in the
    standardised units of y and the [0, 1] units of x."""
    gpr, noise_var, lengths = _fit_optuna_gp(x01, y)
    mean, root = _gp_posterior(gpr, grid01)
    return mean, root, noise_var, float(lengths[0])


def _check_full_length(w, values, epochs_trained, epochs: int, bounds) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(w, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    trained = np.asarray(epochs_trained).ravel()
    if not (w.size == values.size == trained.size):
        raise ValueError(
            f"w, values, epochs_trained differ in length: {w.size}, {values.size}, {trained.size}"
        )
    if np.any(trained != epochs):
        bad = sorted({int(e) for e in trained[trained != epochs]})
        raise ValueError(
            f"only full-length runs ({epochs} epochs) may enter the surrogate; got runs stopped after "
            f"{bad} epochs: leave early-stopped (PRUNED) trials out, their value is at another fidelity"
        )
    if w.size < MIN_OBSERVATIONS:
        raise ValueError(f"need at least {MIN_OBSERVATIONS} full-length runs, got {w.size}")
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite: diverged (FAIL) trials do not enter the surrogate")
    if not (0 < bounds[0] < bounds[1]) or np.any((w < bounds[0]) | (w > bounds[1])):
        raise ValueError(f"every w must lie in bounds {bounds} (0 < low < high), got {w.min()}..{w.max()}")
    return w, values


def _minimiser_probability(mean: np.ndarray, root: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Posterior probability of each grid point being the minimiser, from `samples` joint
    posterior draws of the whole curve, mean + root @ z (the correlation along w matters:
    pointwise bands alone cannot say where the minimum is)."""
    draws = mean + np.random.default_rng(seed).standard_normal((samples, root.shape[1])) @ root.T
    return np.bincount(draws.argmin(axis=1), minlength=mean.size) / samples


def _minimiser_interval(log10_w: np.ndarray, p_min: np.ndarray, best: int, n: int) -> Interval:
    """Central 95% of the minimiser's posterior, widened to contain the recommendation `best`."""
    cdf = np.cumsum(p_min)
    i_low = min(int(np.searchsorted(cdf, 0.025)), best)
    i_high = max(int(np.searchsorted(cdf, 0.975)), best)
    w = 10**log10_w
    return Interval(float(w[best]), float(w[i_low]), float(w[i_high]), 0.95, "gp-minimiser", n)


def observed(log10_grid: np.ndarray, weights) -> np.ndarray:
    """Which grid points (log10 w, shape (m,) or (m, d)) lie in the box of the observed
    weights ((n,) or (n, d)): a recommendation is made only there, since beyond the outermost
    runs the posterior mean is extrapolation (a GP reverts to its mean, and may dip below it)."""
    g = np.asarray(log10_grid, float).reshape(len(log10_grid), -1)
    w = np.log10(np.asarray(weights, float).reshape(len(weights), -1))
    return np.all((g >= w.min(axis=0) - 1e-9) & (g <= w.max(axis=0) + 1e-9), axis=1)


def fit_objective_curve(
    w,
    values,
    epochs_trained,
    *,
    epochs: int,
    bounds: tuple[float, float],
    grid_size: int = 201,
    log_objective: bool = True,
    samples: int = 4000,
    seed: int = 0,
) -> SurrogateFit:
    """Fit the GP to full-length runs of one loss and read the answer off its posterior.

    w, values, epochs_trained: one entry per run (replicate seeds are separate runs at the
    same w). Every run must have trained all `epochs`, else ValueError: leave early-stopped
    trials out (their value is the objective at fewer epochs), and diverged ones (no value).
    bounds: the search space of w, (low, high); log10 w is scaled to [0, 1] over it, as
    Optuna's GPSampler scales a log-uniform parameter, and the grid spans it.
    log_objective: model log(value) (multiplicative noise, see the module docstring); needs
    values > 0. Use False for an objective that can be <= 0.

    The recommended w minimises the posterior mean between the smallest and the largest
    observed w (never an extrapolation, where a GP fitted to a flat stretch reverts to its
    mean and may dip below it). The interval on w is the central 95% of the posterior
    distribution of the minimiser (from joint posterior draws of the curve), widened if
    needed to contain the recommendation; unlike "grid points whose mean lies
    inside the minimum's band" it is a probability statement and accounts for the
    correlation along the curve. It is wide when the curve is flat within the noise, which
    is the honest answer there. The objective interval is the pointwise 95% band at the
    recommended w; taking the minimum of a curve biases it slightly low, so compare with the
    baseline by re-running the recommended w with fresh seeds (`intervals.diff_interval`).
    """
    w, values = _check_full_length(w, values, epochs_trained, epochs, bounds)
    if log_objective and np.any(values <= 0):
        raise ValueError("log_objective=True needs values > 0; pass log_objective=False for this objective")
    y = np.log(values) if log_objective else values
    back = np.exp if log_objective else (lambda v: v)
    lo, hi = np.log10(bounds[0]), np.log10(bounds[1])
    grid = np.linspace(lo, hi, grid_size)
    y_mean, y_std = y.mean(), max(float(y.std()), 1e-12)  # standardised as Optuna does
    mean, root, noise_var, length01 = _optuna_gp_posterior(
        (np.log10(w) - lo) / (hi - lo), (y - y_mean) / y_std, (grid - lo) / (hi - lo)
    )
    mean, root = y_mean + y_std * mean, y_std * root
    half = 1.959964 * np.sqrt((root**2).sum(axis=1))  # 95% pointwise
    p_min = _minimiser_probability(mean, root, samples, seed)
    best = int(np.argmin(np.where(observed(grid, w), mean, np.inf)))
    noise = np.sqrt(noise_var) * y_std
    return SurrogateFit(
        log10_w=grid,
        mean=back(mean),
        low=back(mean - half),
        high=back(mean + half),
        p_min=p_min,
        recommended_w=float(10 ** grid[best]),
        w_interval=_minimiser_interval(grid, p_min, best, w.size),
        objective=Interval(
            float(back(mean[best])),
            float(back(mean[best] - half[best])),
            float(back(mean[best] + half[best])),
            0.95,
            "gp",
            w.size,
        ),
        noise_std=float(noise * back(mean[best]) if log_objective else noise),
        length_scale=float(length01 * (hi - lo)),
        n_observations=w.size,
    )


# --- two weights at once: a joint loss (mse + w1*a + w2*b, issue 13) ---------------------------


@dataclass(frozen=True)
class SurfaceFit:
    """The fitted model of objective(w1, w2) of a joint loss on a grid of (log10 w1, log10 w2).

    `mean`, `low`, `high`: posterior (median) objective and its pointwise 95% band, arrays of
    shape (len(log10_w2), len(log10_w1)) (rows: w2, as matplotlib's contourf takes them).
    `recommended`: the (w1, w2) grid minimiser of `mean` within the box of observed weights;
    `weight_intervals`: a 95% interval on each weight (the minimiser's marginals);
    `objective`: the band there. `length_scales`: fitted, in decades of each weight.
    """

    log10_w1: np.ndarray
    log10_w2: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    recommended: tuple[float, float]
    weight_intervals: tuple[Interval, Interval]
    objective: Interval
    noise_std: float
    length_scales: tuple[float, float]
    n_observations: int


def _marginal_interval(log10_axis: np.ndarray, p: np.ndarray, estimate: float, n: int) -> Interval:
    """Central 95% of one weight's marginal of the minimiser's posterior (`p` over the axis),
    widened to contain the recommended value `estimate`."""
    cdf = np.cumsum(p)
    w = 10**log10_axis
    low = min(float(w[min(int(np.searchsorted(cdf, 0.025)), w.size - 1)]), estimate)
    high = max(float(w[min(int(np.searchsorted(cdf, 0.975)), w.size - 1)]), estimate)
    return Interval(estimate, low, high, 0.95, "gp-minimiser", n)


def fit_objective_surface(
    weights,
    values,
    epochs_trained,
    *,
    epochs: int,
    bounds: tuple[float, float],
    grid_size: int = 61,
    minimiser_grid_size: int = 31,
    log_objective: bool = True,
    samples: int = 4000,
    seed: int = 0,
) -> SurfaceFit:
    """`fit_objective_curve` for a joint loss: Optuna's GP over (log10 w1, log10 w2), each
    scaled to [0, 1] over `bounds` (the range every weight of the space shares), fitted to
    full-length runs only (same checks), noise and log-objective as there. `weights`: shape
    (n, 2), one row per run. The recommended pair minimises the posterior mean within the
    box of observed weights (never an extrapolation); the objective's interval there is the
    pointwise band. The interval on each weight is the central 95% of that weight's marginal
    of the minimiser's posterior, from joint draws of the surface on a coarser
    `minimiser_grid_size`^2 grid (the joint covariance of the fine grid would be 3721^2),
    widened to contain the recommendation."""
    weights = np.asarray(weights, dtype=np.float64).reshape(-1, 2)
    for k in range(2):
        _check_full_length(weights[:, k], values, epochs_trained, epochs, bounds)
    values = np.asarray(values, dtype=np.float64).ravel()
    if log_objective and np.any(values <= 0):
        raise ValueError("log_objective=True needs values > 0; pass log_objective=False for this objective")
    y = np.log(values) if log_objective else values
    back = np.exp if log_objective else (lambda v: v)
    lo, hi = np.log10(bounds[0]), np.log10(bounds[1])
    y_mean, y_std = y.mean(), max(float(y.std()), 1e-12)
    gpr, noise_var, lengths = _fit_optuna_gp((np.log10(weights) - lo) / (hi - lo), (y - y_mean) / y_std)

    def square(size):  # rows w2, columns w1 (as contourf takes them), flattened
        axis = np.linspace(lo, hi, size)
        g1, g2 = np.meshgrid(axis, axis)
        return axis, np.column_stack([g1.ravel(), g2.ravel()])

    axis, grid = square(grid_size)
    mean, sd = _gp_posterior(gpr, (grid - lo) / (hi - lo), joint=False)
    mean, half = y_mean + y_std * mean, 1.959964 * y_std * sd[:, 0]
    best = int(np.argmin(np.where(observed(grid, weights), mean, np.inf)))
    recommended = (float(10 ** grid[best, 0]), float(10 ** grid[best, 1]))

    coarse_axis, coarse = square(minimiser_grid_size)
    c_mean, c_root = _gp_posterior(gpr, (coarse - lo) / (hi - lo))
    p_min = _minimiser_probability(c_mean, c_root, samples, seed).reshape(minimiser_grid_size, -1)
    intervals = (_marginal_interval(coarse_axis, p_min.sum(axis=0), recommended[0], len(values)),  # w1
                 _marginal_interval(coarse_axis, p_min.sum(axis=1), recommended[1], len(values)))  # w2
    shape = (grid_size, grid_size)
    return SurfaceFit(
        log10_w1=axis,
        log10_w2=axis,
        mean=back(mean).reshape(shape),
        low=back(mean - half).reshape(shape),
        high=back(mean + half).reshape(shape),
        recommended=recommended,
        weight_intervals=intervals,
        objective=Interval(float(back(mean[best])), float(back(mean[best] - half[best])),
                           float(back(mean[best] + half[best])), 0.95, "gp", len(values)),
        noise_std=float(np.sqrt(noise_var) * y_std * (back(mean[best]) if log_objective else 1.0)),
        length_scales=tuple(float(v * (hi - lo)) for v in np.ravel(lengths)),
        n_observations=len(values),
    )
