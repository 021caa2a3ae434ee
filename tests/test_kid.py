"""KID (tune_vqvae.metrics.kid) against its definition written out term by term, and its
behaviour on simulated features; on CUDA, the same numbers as on the CPU."""

import importlib

import numpy as np
import pytest
import torch

from tune_vqvae.metrics.kid import kid

kid_module = importlib.import_module("tune_vqvae.metrics.kid")


def _kid_reference(a, b, subsets, subset_size, seed):
    """KID written out term by term from its definition (Binkowski et al. 2018, eq. for the
    unbiased MMD^2), drawing the subsets in the same order as `kid`."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    k = lambda x, y: (float(np.dot(x, y)) / d + 1.0) ** 3
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
        values.append(xx + yy - 2 * xy)
    return np.mean(values), np.std(values)


def test_kid_matches_reference_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 6))
    b = rng.normal(loc=0.3, scale=1.2, size=(25, 6))
    ref = _kid_reference(a, b, subsets=4, subset_size=12, seed=3)
    assert kid(a, b, subsets=4, subset_size=12, seed=3) == pytest.approx(ref, rel=1e-10)
    # subset size is capped at the smaller set, as in clean-fid / StyleGAN2-ADA
    ref_capped = _kid_reference(a, b, subsets=2, subset_size=1000, seed=1)
    assert kid(a, b, subsets=2, subset_size=1000, seed=1) == pytest.approx(ref_capped, rel=1e-10)


def test_kid_precomputed_kernel_equals_per_subset(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(80, 10)), rng.normal(size=(60, 10)) + 0.2
    fast = kid(a, b, subsets=5, subset_size=40)
    monkeypatch.setattr(kid_module, "PRECOMPUTE_MAX_ENTRIES", 0)
    assert kid(a, b, subsets=5, subset_size=40) == pytest.approx(fast, rel=1e-10)


def test_kid_is_unbiased_near_zero_for_same_distribution_and_grows_with_shift():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 32)), rng.normal(size=(400, 32))
    same, same_std = kid(a, b, subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    shifted, _ = kid(a, b + 0.5, subsets=20, subset_size=200)
    assert shifted > 10 * abs(same)


def test_kid_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same dimension"):
        kid(np.zeros((5, 3)), np.zeros((5, 4)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_kid_on_cuda_equals_cpu():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(300, 64)), rng.normal(size=(250, 64)) + 0.1
    cpu = kid(a, b, subsets=8, subset_size=100)
    assert kid(a, b, subsets=8, subset_size=100, device="cuda") == pytest.approx(cpu, rel=1e-9)
