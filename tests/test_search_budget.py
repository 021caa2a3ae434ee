"""The search benchmark under a distortion budget (issue 24): the distortion curves' shape, the
`constrained` strategy end to end, and its violation and regret fields on known cases."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"

from tune_vqvae import distortion_curves as dc  # noqa: E402
from tune_vqvae.bench import main as bench_main  # noqa: E402
from tune_vqvae.bench.search_budget import (  # noqa: E402
    BudgetSim,
    BudgetTruth,
    constrained_answer,
    constrained_search,
    median_interval,
    simulate,
)
from tune_vqvae.bench.search_config import SearchBenchConfig  # noqa: E402
from tune_vqvae.bench.search_score import Truth, score  # noqa: E402
from tune_vqvae.constraints import parse  # noqa: E402
from tune_vqvae.curves import OPTIMUM_LOG10_W, load_curve  # noqa: E402
from tune_vqvae.stats.constrained import LEVEL  # noqa: E402


def _drop(name: str, w: float) -> float:
    return dc.BASELINE_PSNR - dc.DISTORTIONS[name]("gmsd", True, w, None, 6, 6)


@pytest.mark.parametrize("name", list(dc.DISTORTIONS))
def test_distortion_worsens_smoothly_with_w_from_the_baseline_to_l_alone(name):
    d = dc.DISTORTIONS[name]
    assert d("mse", True, None, None, 6, 6) == dc.BASELINE_PSNR
    drops = np.array([_drop(name, w) for w in np.logspace(-3, 1, 200)])
    assert np.all(np.diff(drops) > 0) and drops[0] < 0.01 and drops[-1] < dc.NO_MSE_DROP
    assert dc.BASELINE_PSNR - d("gmsd", False, None, None, 6, 6) == dc.NO_MSE_DROP  # L alone
    assert _drop(name, dc.bound_w(name, 0.2)) == pytest.approx(0.2)


def test_measured_drop_is_the_cifar_figure_and_the_budgets_bind_where_documented():
    assert _drop("measured", 0.5) == pytest.approx(dc.MEASURED_DROP)  # mse + 0.5 ssim: -0.129 dB
    optimum = 10 ** OPTIMUM_LOG10_W  # realistic's w = 0.32
    assert _drop("measured", optimum) < 0.2 < _drop("measured", 2.0)  # narrow's dip (w = 2) is cut
    assert _drop("binding", optimum) > 0.2 and dc.bound_w("binding", 0.2) == pytest.approx(0.15)


def test_distortion_noise_is_its_own_with_the_measured_spread():
    d, curve = dc.DISTORTIONS["measured"], load_curve("realistic")
    psnr = np.array([d("gmsd", True, 0.5, s, 6, 6) for s in range(2000)])
    objective = np.array([curve("gmsd", True, 0.5, s, 6, 6) for s in range(2000)])
    assert psnr.std() == pytest.approx(dc.PSNR_SD, rel=0.07)
    assert psnr.mean() == pytest.approx(dc.BASELINE_PSNR - dc.MEASURED_DROP, abs=0.01)
    assert abs(np.corrcoef(psnr, objective)[0, 1]) < 0.08  # not the objective's draw
    assert d("gmsd", True, 0.5, 7, 6, 6) == d("gmsd", True, 0.5, 7, 2, 6)  # reproducible, last value


def _bc(**kw) -> SearchBenchConfig:
    return SearchBenchConfig(**{"curves": ["realistic"], "repeats": 1, "budgets": [7], "epochs": 2,
                                "grace": 1, "confirm_seeds": 2, "workers": 1,
                                "strategies": ["new", "constrained"], **kw})


def test_budget_truth_scores_violations_and_regret_among_feasible_weights():
    bc = _bc(distortion="binding")
    truth = Truth(load_curve("realistic"), bc)
    budget = BudgetTruth(truth, bc)
    edge = dc.bound_w("binding", 0.2)
    assert budget.feasible_w[0] == bc.low and budget.feasible_w[1] == pytest.approx(edge, rel=0.01)
    at_edge = truth.value({"with_mse": True, "w": edge})
    assert budget.describe()["binds"] and budget.minimum == pytest.approx(at_edge, rel=1e-3)
    inside, outside = budget.score({"with_mse": True, "w": 0.1}), budget.score({"with_mse": True, "w": 0.32})
    assert not inside["violates"] and inside["feasible_regret"] > 0
    assert outside["violates"] and outside["feasible_regret"] < 0  # better than any feasible w
    loose = BudgetTruth(truth, _bc(constraint="val_psnr >= -5"))  # nothing violates it
    assert loose.minimum == truth.minimum and not loose.describe()["binds"]
    assert not loose.score({"with_mse": False})["violates"]


def cliff(loss, with_mse, w, seed, epoch, epochs):
    """A distortion 3 dB worse above w = 0.05 (sd 0.02 dB): every w > 0.05 is clearly infeasible."""
    noise = 0.0 if seed is None else 0.02 * math.sin(7.0 * seed + (w or 0.0))
    return 18.0 + noise - (3.0 if (not with_mse or (w is not None and w > 0.05)) else 0.0)


def test_constrained_recommendation_stays_below_a_cliff():
    bc = _bc(budgets=[8])
    sim = BudgetSim(load_curve("realistic"), bc, seed0=0, distortion=cliff, constraint=parse(bc.constraint))
    rows = constrained_search(sim, 8)
    assert [r["role"] for r in rows[:3]] == ["baseline"] * 3  # the baseline first: it fixes the budget
    assert sim.baseline_mean == pytest.approx(18.0, abs=0.05)
    assert all("val_psnr" in r for r in rows)
    out = constrained_answer(sim, rows)
    assert not out["no_recommendation"] and out["point"]["w"] <= 0.05 and out["p_feasible"] >= LEVEL
    assert out["budget_verdict"] in ("within budget", "not resolved")
    assert out["baseline_runs"] == bc.baseline_seeds + bc.confirm_seeds  # the confirmation pairs them


@pytest.mark.slow
def test_constrained_strategy_end_to_end_with_a_budget_no_w_violates():
    bc = _bc(repeats=2, constraint="val_psnr >= -5")
    raw = {"realistic": [simulate("realistic", r, bc) for r in range(bc.repeats)]}
    per = score(bc, raw)["curves"]["realistic"]
    assert not per["budget"]["binds"]
    for strategy in ("new", "constrained"):
        s = per[strategy]["7"]
        assert s["violation_rate"] == 0 and s["violation_interval95"][0] == 0
        assert s["feasible_regrets"] == s["regrets"]  # the feasible minimum is the true minimum
        assert all(slack < 0 for slack in s["true_slacks"])
    c = per["constrained"]["7"]
    assert c["no_recommendation"] == 0 and sum(c["budget_verdicts"].values()) == 2
    assert c["runs_per_search"] >= 3 + 7 + 2 * 2  # baseline, search, a confirmed candidate and the baseline


def test_median_interval_covers_the_median_by_order_statistics():
    x = np.arange(200.0)
    low, high = median_interval(x)
    assert low < np.median(x) < high and 80 <= low <= 90 and 109 <= high <= 119
    assert median_interval([1.0, 2.0, 3.0]) == (1.0, 3.0)  # too few for 95%: the range


@pytest.mark.parametrize("argv, words", [
    (["--constraint", "val_psnr <= -0.2"], "higher is better"),
    (["--distortion", "nowhere"], "distortion curve"),
    (["--constraint", "val_ssim >= -1%"], "report val_psnr"),
])
def test_bad_budget_flags_exit_2_with_one_line(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as e:
        bench_main(["search", "--strategies", "constrained", *argv, "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and words in err[0], err
    assert not any(tmp_path.iterdir())
