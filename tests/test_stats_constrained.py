"""The best w within a distortion budget (tune_vqvae.stats.constrained) on synthetic runs with
known curves: an objective that improves with w, a PSNR that worsens with it (issue 24's
perception-distortion trade-off), run-to-run noise, fixed seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tune_vqvae.constraints import parse
from tune_vqvae.stats.constrained import recommend

BOUNDS, EPOCHS, N = (1e-3, 10.0), 6, 24
PSNR_0 = 25.0  # the MSE baseline's true mean PSNR, dB


def psnr_true(x):
    """0.1 dB lost at log10 w = -2, 1.6 dB at w = 10; -0.2 dB is met for w <= 0.026."""
    return PSNR_0 - 0.1 * (x + 3) ** 2


def fid_like(x):
    return 70.0 * (1 - 0.08 * (x + 3))  # lower is better, 32% better at w = 10


def ssim_like(x):
    return 0.44 + 0.035 * (x + 3)  # higher is better


def runs(seed, objective=fid_like):
    """N log-uniform w, the objective (3.5% noise) and PSNR (0.05 dB noise) of each run, and
    8 baseline runs' PSNR."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(np.log10(BOUNDS[0]), np.log10(BOUNDS[1]), N)
    return (10**x, objective(x) * (1 + 0.035 * rng.normal(size=N)), psnr_true(x) + 0.05 * rng.normal(size=N),
            PSNR_0 + 0.05 * rng.normal(size=8))


def answer(seed, budget="val_psnr >= -0.2", objective=fid_like, lower_is_better=True, **kw):
    w, obj, psnr, base = runs(seed, objective)
    return recommend(w, obj, psnr, base, constraint=parse(budget), lower_is_better=lower_is_better,
                     epochs_trained=[EPOCHS] * N, epochs=EPOCHS, bounds=BOUNDS, **kw)


@pytest.mark.parametrize("seed", range(4))
def test_within_budget_under_the_true_curves_and_below_the_unconstrained(seed):
    r = answer(seed)
    assert r.note is None and r.recommended_w is not None
    assert psnr_true(np.log10(r.recommended_w)) >= PSNR_0 - 0.2  # the budget holds, truly
    assert r.recommended_w < r.unconstrained_w  # the budget bought PSNR back with FID
    assert r.unconstrained_w > 1.0 and r.recommended_w > 0.005  # not needlessly timid either
    assert r.p_at_recommended >= 0.95
    assert r.objective[1] <= r.objective[0] <= r.objective[2]
    assert r.p_feasible[0] > 0.99 and r.p_feasible[-1] < 0.01  # small w keeps PSNR, large loses it


def test_a_higher_is_better_objective_and_a_percent_budget():
    r = answer(0, "val_psnr >= -1%", objective=ssim_like, lower_is_better=False)  # bound 24.75 dB
    assert r.threshold == pytest.approx(r.baseline_mean * 0.99)
    assert psnr_true(np.log10(r.recommended_w)) >= PSNR_0 * 0.99
    assert r.recommended_w < r.unconstrained_w
    assert r.objective[0] == pytest.approx(ssim_like(np.log10(r.recommended_w)), abs=0.02)


def test_a_stricter_level_recommends_a_safer_w():
    assert answer(1, level=0.99).recommended_w <= answer(1, level=0.8).recommended_w


def test_an_infeasible_budget_is_a_note_not_an_exception():
    r = answer(0, "val_psnr >= 1")  # 1 dB better than MSE's own PSNR: no w gives it
    assert r.recommended_w is None and r.objective is None
    assert r.note.startswith("no searched w keeps val_psnr at least 1 dB above the MSE baseline's mean "
                             "with probability >= 95% (likeliest: w = ")
    out = json.loads(json.dumps(r.to_json(), allow_nan=False))  # strict JSON
    assert out["recommended_w"] is None and out["note"] == r.note
    assert out["constraint"] == "val_psnr >= 1"


def test_the_json_is_strict_and_complete():
    r = answer(2)
    out = json.loads(json.dumps(r.to_json(), allow_nan=False))
    assert out["recommended_w"] == r.recommended_w and out["note"] is None
    assert len(out["log10_w"]) == len(out["p_feasible"]) == r.log10_w.size
    assert set(out["objective"]) == {"estimate", "low", "high"}
    assert out["description"] == "val_psnr at most 0.2 dB below the MSE baseline's mean"


def test_bad_calls():
    w, obj, psnr, _ = runs(0)
    kw = dict(constraint=parse("val_psnr >= -0.2"), lower_is_better=True, epochs_trained=[EPOCHS] * N,
              epochs=EPOCHS, bounds=BOUNDS)
    with pytest.raises(ValueError, match="baseline"):
        recommend(w, obj, psnr, [], **kw)
    with pytest.raises(ValueError, match="level"):
        recommend(w, obj, psnr, [25.0], level=1.0, **kw)
    with pytest.raises(ValueError, match="full-length"):  # the surrogate's own guard holds
        recommend(w, obj, psnr, [25.0], **{**kw, "epochs_trained": [2] + [EPOCHS] * (N - 1)})
