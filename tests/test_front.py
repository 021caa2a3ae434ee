"""The perception-distortion front (issue 24, `--objective A --objective B`): the estimated
front over log w on synthetic runs with a known answer (a trade-off everywhere: all of it; a
dominated stretch: left out; directions from `objectives`), bad input, the two-objective
sampler, and one search through Ray on the mock trainable with its report."""

from __future__ import annotations

import json
import os

import numpy as np
import optuna
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters
from processes import run, study  # noqa: E402

from tune_vqvae import objectives  # noqa: E402
from tune_vqvae.errors import UserError  # noqa: E402
from tune_vqvae.sampler import WeightSampler  # noqa: E402
from tune_vqvae.stats.front import estimate_front, format_front, front_answer, non_dominated  # noqa: E402

BOUNDS = (1e-3, 10.0)
W = np.repeat(10 ** np.linspace(-3, 1, 8), 2)  # 8 weights, 2 seeds each
X = np.log10(W)
NOISE = np.random.default_rng(0).normal(size=(2, W.size))


def _front(swd, psnr):
    return estimate_front(W, swd, psnr, names=("swd", "val_psnr"), epochs=4, bounds=BOUNDS)


def test_non_dominated_minimises_both():
    assert non_dominated([1, 2, 3], [3, 2, 1]).tolist() == [True, True, True]
    assert non_dominated([1, 2, 3], [1, 2, 0.5]).tolist() == [True, False, True]
    assert non_dominated([1, 1], [2, 2]).tolist() == [True, True]  # equal points: neither beats the other


def test_a_trade_off_everywhere_is_all_front():
    # SWD falls with w (better), PSNR falls with w (worse): every w is a compromise
    f = _front(70 - 3 * X + 0.05 * NOISE[0], 25 - 0.5 * X + 0.02 * NOISE[1])
    assert f["w_range"] == pytest.approx([1e-3, 10.0])
    assert len(f["points"]) == len(f["log10_w"]) == 201
    p = f["points"]
    assert p[0]["val_psnr"]["estimate"] > p[-1]["val_psnr"]["estimate"]
    assert p[0]["swd"]["estimate"] > p[-1]["swd"]["estimate"]
    for q in p:  # every front point has both objectives' 95% bands
        for name in ("swd", "val_psnr"):
            assert q[name]["low"] < q[name]["estimate"] < q[name]["high"]


def test_a_dominated_stretch_is_left_out():
    # SWD best at w = 0.3 and worse above, PSNR worse as w grows: above 0.3 both are worse
    f = _front(70 * (1 + 0.1 * (X - np.log10(0.3)) ** 2) * (1 + 0.01 * NOISE[0]),
               25 - 0.5 * X + 0.02 * NOISE[1])
    low, high = f["w_range"]
    assert low == pytest.approx(1e-3) and 0.15 < high < 0.6, f["w_range"]


def test_directions_come_from_the_objectives():
    # both improve with w (PSNR rises): no trade-off, the front is the largest w alone
    f = _front(70 - 3 * X + 0.05 * NOISE[0], 25 + 0.5 * X + 0.02 * NOISE[1])
    assert f["w_range"] == pytest.approx([10.0, 10.0]) and len(f["points"]) == 1
    assert f["directions"] == ["lower is better", "higher is better"]
    # the same numbers read as MSE (lower is better) are a trade-off again: all of it
    g = estimate_front(W, 70 - 3 * X + 0.05 * NOISE[0], 25 + 0.5 * X + 0.02 * NOISE[1],
                       names=("swd", "val_mse"), epochs=4, bounds=BOUNDS)
    assert len(g["points"]) == 201


def _rows():
    swd, psnr = 70 - 3 * X + 0.05 * NOISE[0], 25 - 0.5 * X + 0.02 * NOISE[1]
    rows = [{"experiment": "gmsd", "loss": "gmsd", "role": "search", "with_mse": True, "w": float(w),
             "value": float(s), "swd": float(s), "val_psnr": float(p), "status": "COMPLETED",
             "epochs_trained": 4, "seed": k % 2} for k, (w, s, p) in enumerate(zip(W, swd, psnr))]
    rows += [{"experiment": "baseline", "loss": "mse", "role": "baseline", "with_mse": True, "w": None,
              "value": 80.0 + k, "swd": 80.0 + k, "val_psnr": 26.0 - 0.1 * k, "status": "COMPLETED",
              "epochs_trained": 4, "seed": k} for k in range(3)]
    rows += [{"experiment": "gmsd-confirm", "loss": "gmsd", "role": "confirm", "candidate": "recommended",
              "with_mse": True, "w": 0.1, "value": 73.0 + k, "swd": 73.0 + k, "val_psnr": 25.5,
              "status": "COMPLETED", "epochs_trained": 4, "seed": 100 + k} for k in range(2)]
    return rows


def test_front_answer_has_the_baseline_and_the_confirmed_candidates():
    f = front_answer(_rows(), "gmsd", epochs=4, bounds=BOUNDS, objective="swd", trade_off="val_psnr")
    assert f["fitted"] and f["n_observations"] == 16
    assert f["baseline"]["swd"]["estimate"] == pytest.approx(81.0) and f["baseline"]["swd"]["n"] == 3
    assert f["baseline"]["val_psnr"]["low"] < 25.9 < f["baseline"]["val_psnr"]["high"]
    c = f["confirmed"]["recommended"]
    assert c["w"] == 0.1 and c["swd"]["estimate"] == pytest.approx(73.5) and c["swd"]["n"] == 2
    json.dumps(f, allow_nan=False)  # strict JSON
    text = "\n".join(format_front("gmsd", f))
    assert "estimated front of swd (lower is better) vs val_psnr (higher is better)" in text
    assert "MSE" in text and "recommended: 2 confirmation runs' mean" in text
    # too few distinct w: said, not fatal
    few = [r for r in _rows() if r["role"] != "search" or r["w"] < 0.01]
    f = front_answer(few, "gmsd", epochs=4, bounds=BOUNDS, objective="swd", trade_off="val_psnr")
    assert not f["fitted"] and "the surrogates need 3" in f["note"]
    assert format_front("gmsd", f)[0].startswith("gmsd: no front of swd vs val_psnr")


def test_the_figure_draws_the_budget_and_the_constrained_recommendation():
    from types import SimpleNamespace

    from analysis.front import front_plot

    f = front_answer(_rows(), "gmsd", epochs=4, bounds=BOUNDS, objective="swd", trade_off="val_psnr")
    a = SimpleNamespace(rows=_rows(), epochs=4)
    budget = {"constraint": "val_psnr >= -0.5", "threshold": 25.4, "recommended_w": 0.1}
    png, said = front_plot(a, "gmsd", f, budget)
    assert png[:4] == b"\x89PNG" and "the dashed line" in said and "w = 0.1" in said
    png, said = front_plot(a, "gmsd", f, {**budget, "constraint": "val_ssim >= -1%"})
    assert "not drawn (val_ssim is neither axis)" in said
    assert front_plot(a, "gmsd", f, None)[1] == ""


@pytest.mark.parametrize("names, said", [
    (["swd", "val_psnr", "val_ssim"], "given 3 times"),
    (["swd", "swd"], "given twice"),
    (["swd", "sharpness"], "unknown --objective 'sharpness'"),
])
def test_bad_objective_lists_are_one_line(names, said):
    with pytest.raises(UserError, match=said):
        objectives.pair(names)


@pytest.mark.parametrize("extra, said", [
    (["--objective", "swd", "--objective", "val_psnr", "--objective", "val_mse"], "given 3 times"),
    (["--objective", "val_psnr", "--objective", "val_psnr"], "given twice"),
    (["--objective", "swd", "--objective", "nope"], "unknown --objective 'nope'"),
    (["--objective", "swd", "--objective", "val_psnr", "--early-stop"], "drop --early-stop"),
])
def test_the_cli_refuses_bad_input_with_exit_2(tmp_path, capsys, extra, said):
    assert run(["--mock", "--loss", "gmsd", "--storage-path", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err
    assert not any(tmp_path.iterdir())  # nothing left behind


def test_the_sampler_proposes_by_two_objectives():
    """A two-direction study: the shadow study has both, GPSampler (log EHVI) proposes a w."""
    s = optuna.create_study(directions=["minimize", "maximize"], sampler=WeightSampler(seed=1))
    dist = optuna.distributions.FloatDistribution(*BOUNDS, log=True)
    for w in (0.001, 0.01, 0.1, 1.0, 10.0):
        x = np.log10(w)
        s.add_trial(optuna.trial.create_trial(
            params={"with_mse": True, "w": w}, values=[70 - 3 * x, 25 - 0.5 * x],
            distributions={"with_mse": optuna.distributions.CategoricalDistribution([True]), "w": dist}))
    t = s.ask({"with_mse": optuna.distributions.CategoricalDistribution([True]), "w": dist})
    assert BOUNDS[0] <= t.params["w"] <= BOUNDS[1]


@pytest.mark.slow
def test_a_two_objective_search_answers_with_the_front(ray_cluster, tmp_path, capsys):
    """--mock: SWD is the mock's value and val_psnr 30 minus it, so the two agree and the
    front shrinks to the stretch around the known best w (2.0 for gmsd); a sign taken the
    wrong way would make every w a trade-off."""
    rc = run(["--mock", "--loss", "gmsd", "--epochs", "2", "--num-samples", "8", "--baseline-seeds", "2",
              "--confirm-seeds", "2", "--objective", "swd", "--objective", "val_psnr",
              "--storage-path", str(tmp_path), "--name", "front"])
    assert rc == 0
    exp = tmp_path / "front"
    console = capsys.readouterr().out
    assert "front against val_psnr" in console and "gmsd: estimated front of swd" in console
    assert json.loads((exp / "search.json").read_text())["trade_off"] == "val_psnr"
    s = study(exp, "gmsd")  # a two-objective study: each completed trial told both values
    assert [d.name for d in s.directions] == ["MINIMIZE", "MAXIMIZE"]
    done = [t for t in s.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 8 and all(t.values[1] == pytest.approx(30 - t.values[0]) for t in done)

    f = json.loads((exp / "results.json").read_text())["answer"]["losses"]["gmsd"]["front"]
    assert f["fitted"] and f["objectives"] == ["swd", "val_psnr"]
    low, high = f["w_range"]
    assert 0.5 < low <= high < 8 and len(f["points"]) < 60, (f["w_range"], len(f["points"]))
    assert f["baseline"]["val_psnr"]["estimate"] == pytest.approx(29.0, abs=0.02)
    assert "recommended" in f["confirmed"]

    # the report: the same front recomputed, its figure and CSV
    from analysis.cli import main

    assert main([str(exp), "--no-reconstructions"]) == 0
    out = exp / "analysis"
    assert (out / "front_gmsd.png").stat().st_size > 10_000
    assert "Perception-distortion front" in (out / "report.md").read_text()
    csv = (out / "front.csv").read_text().splitlines()
    assert csv[0].startswith("loss,w,swd_estimate") and len(csv) == 1 + len(f["points"])

    # --resume keeps the objectives: one of them alone is refused, in one line
    assert run(["--resume", str(exp), "--objective", "swd"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--objective default (saved: val_psnr)" in err[0], err
