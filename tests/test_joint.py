"""Joint losses (issue 13, "two weights at once"): `ssim+gmsd` = mse + w1*ssim + w2*gmsd in the
loss, the train CLI, the vocabulary, the search space, the sampler (one GP over both weights),
the 2-D surrogate and the answer. No Ray here (tests/test_joint_search.py runs the search)."""

from __future__ import annotations

import math
import re
import textwrap

import optuna
import pytest
import torch
import torch.nn.functional as F

from tune_vqvae.errors import UserError
from tune_vqvae.losses import LossConfig, ReconstructionLoss, find_metric
from tune_vqvae.sampler import WeightSampler
from tune_vqvae.search._spaces import load_space, space_for
from tune_vqvae.stats import joint, merge_candidates
from tune_vqvae.stats import search_answer as answer
from tune_vqvae.stats.surrogate import fit_objective_surface
from tune_vqvae.train import TrainConfig
from tune_vqvae.train._cli import build_parser, config_from_args
from tune_vqvae.vocab import config_label, dir_tag, joint_weights, label, mode, point_name, run_label


def images(seed, n=4, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


# --- the loss ---------------------------------------------------------------------------------

def test_joint_loss_is_mse_plus_both_weighted_terms():
    x, y = images(0), images(1)
    total, mse, weighted = ReconstructionLoss(LossConfig("ssim+gmsd", weights=[0.5, 0.25]))(y, x)
    ssim = ReconstructionLoss(LossConfig("ssim", 1.0)).perceptual(y, x)
    gmsd = ReconstructionLoss(LossConfig("gmsd", 1.0)).perceptual(y, x)
    assert mse.item() == pytest.approx(F.mse_loss(y, x).item())
    assert weighted.item() == pytest.approx(0.5 * ssim.item() + 0.25 * gmsd.item(), rel=1e-6)
    assert total.item() == pytest.approx(mse.item() + 0.5 * ssim.item() + 0.25 * gmsd.item(), rel=1e-6)


def test_joint_loss_is_zero_on_identical_images_and_differentiable():
    x = images(0)
    y = x.clone().requires_grad_(True)
    total, _, _ = ReconstructionLoss(LossConfig("ssim+gmsd", weights=[2.0, 0.1]))(y, x)
    total.backward()
    assert abs(total.item()) < 1e-5 and torch.isfinite(y.grad).all()


def test_joint_loss_config_defaults_round_trip_and_bad_input():
    assert LossConfig("ssim+gmsd", weight=0.5).weights == [0.5, 0.5]  # one weight: every part
    cfg = TrainConfig(loss=LossConfig("ssim+gmsd", weights=[0.5, 0.25]))
    back = TrainConfig.from_dict(cfg.to_dict())
    assert back.loss.weights == [0.5, 0.25] and back.loss.label == "mse+0.5*ssim+0.25*gmsd"
    assert LossConfig("gmsd", 0.5).weights is None  # single losses unchanged
    for bad, says in [(dict(name="ssim+gmsd", weights=[0.5]), "2 positive weights"),
                      (dict(name="ssim+gmsd", weights=[0.5, -1]), "2 positive weights"),
                      (dict(name="ssim+gmsd", with_mse=False), "always trains with MSE"),
                      (dict(name="gmsd", weights=[0.5, 0.5]), "single loss"),
                      (dict(name="ssim+ssim"), "distinct"),
                      (dict(name="ssim+mse"), "distinct"),
                      (dict(name="ssim+nope"), "unknown loss 'nope'")]:
        with pytest.raises(UserError, match=says):
            LossConfig(**bad)
    with pytest.raises(UserError):
        find_metric("ssim+gmsd")  # one metric per name; joint names go through find_metrics


def test_train_cli_weight_syntax():
    p = build_parser()
    cfg = config_from_args(p.parse_args(["--loss", "ssim+gmsd", "--weight", "0.5,0.25"]))
    assert cfg.loss.weights == [0.5, 0.25] and cfg.loss.label == "mse+0.5*ssim+0.25*gmsd"
    cfg = config_from_args(p.parse_args(["--loss", "gmsd", "--weight", "0.5"]))
    assert cfg.loss.weight == 0.5 and cfg.loss.weights is None
    with pytest.raises(UserError, match="single loss"):
        config_from_args(p.parse_args(["--loss", "gmsd", "--weight", "0.5,0.25"]))


def test_train_cli_bad_joint_weights_exit_2_with_one_line(tmp_path, capsys):
    from tune_vqvae.train._cli import main

    with pytest.raises(SystemExit) as e:
        main(["--loss", "ssim+gmsd", "--weight", "0.5,0.25,1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "2 positive weights" in err


# --- the vocabulary ---------------------------------------------------------------------------

def test_joint_labels_and_directory_names():
    c = {"loss": "ssim+gmsd", "role": "search", "with_mse": True, "w": None, "w1": 0.5, "w2": 0.25}
    assert joint_weights(c) == (0.5, 0.25)
    assert joint_weights({**c, "role": "baseline"}) is None and joint_weights({**c, "w2": None}) is None
    assert config_label(c) == label("ssim+gmsd", True, (0.5, 0.25)) == "mse+0.5*ssim+0.25*gmsd"
    assert run_label("ssim+gmsd", True, (0.5, 0.25)) == "mse+0.5*ssim+0.25*gmsd"
    assert mode("ssim+gmsd", True) == "mse+w1*ssim+w2*gmsd"
    assert point_name(True, (0.5, 0.25)) == "w=(0.5, 0.25)"
    assert dir_tag("search", True, (0.5, 0.25)) == "w0.5_0.25"
    assert config_label({"loss": "gmsd", "role": "search", "w": 0.5}) == "mse+0.5*gmsd"  # unchanged


# --- the search space -------------------------------------------------------------------------

def test_joint_space_file_and_default_round_trip():
    space = space_for("ssim+gmsd")  # search_spaces/ssim+gmsd.yaml
    assert space.losses == ["ssim+gmsd"] and space.keys == ("w1", "w2") and space.with_mse == [True]
    assert space.points == [{"with_mse": True, "w1": w, "w2": w} for w in (1.0, 0.5, 0.25)]
    assert space.is_point(True, (0.5, 0.5)) and not space.is_point(True, (0.5, 0.25))
    default = space_for("gmsd+ms_ssim")  # no file: the generated default
    assert (default.low, default.high, default.points) == (space.low, space.high, space.points)
    assert space_for("gmsd").keys == ("w",) and not space_for("gmsd").joint


@pytest.mark.parametrize("body,says", [
    ("losses: [ssim+gmsd]\nw: {low: 0.001, high: 10}\nwith_mse: [true, false]\n",
     "key 'with_mse': a joint loss always trains with MSE"),
    ("losses: [ssim+gmsd]\nw: {low: 0.001, high: 10}\nwith_mse: [true]\npoints: [{with_mse: true, w: 0.5}]\n",
     "key 'points[0].w': a joint loss's point needs a list of 2"),
    ("losses: [ssim+gmsd]\nw: {low: 0.001, high: 10}\nwith_mse: [true]\n"
     "points: [{with_mse: true, w: [0.5, 20]}]\n", "key 'points[0].w': 20 is outside"),
    ("losses: [ssim+gmsd, gmsd]\nw: {low: 0.001, high: 10}\nwith_mse: [true]\n", "mixes single and joint"),
    ("losses: [ssim+ssim]\nw: {low: 0.001, high: 10}\nwith_mse: [true]\n", "distinct"),
    ("losses: [gmsd]\nw: {low: 0.001, high: 10}\npoints: [{with_mse: true, w: [0.5, 0.5]}]\n",
     "must be a positive number"),
])
def test_bad_joint_space_is_one_line_naming_the_key(tmp_path, body, says):
    f = tmp_path / "space.yaml"
    f.write_text(body)
    with pytest.raises(UserError, match=re.escape(says)) as e:
        load_space(f)
    assert "\n" not in str(e.value) and str(f) in str(e.value)


def test_search_cli_bad_joint_space_exits_2_with_one_line(tmp_path, capsys):
    from tune_vqvae.search._cli import main

    f = tmp_path / "space.yaml"
    f.write_text(textwrap.dedent("""\
        losses: [ssim+gmsd]
        w: {low: 0.001, high: 10}
        with_mse: [true, false]
        """))
    with pytest.raises(SystemExit) as e:
        main(["--mock", "--space", str(f), "--storage-path", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "always trains with MSE" in err
    assert not any(tmp_path.glob("*/search.json"))  # nothing left behind


# --- the sampler: one GP over both weights ------------------------------------------------------

BEST = (0.5, 0.05)


def bowl(w1, w2):
    return 0.2 + (math.log10(w1 / BEST[0])) ** 2 + (math.log10(w2 / BEST[1])) ** 2


@pytest.mark.slow
def test_weight_sampler_models_both_weights_with_one_gp():
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        trial.suggest_categorical("with_mse", [True])
        w1 = trial.suggest_float("w1", 1e-3, 10, log=True)
        return bowl(w1, trial.suggest_float("w2", 1e-3, 10, log=True))

    study = optuna.create_study(sampler=WeightSampler(seed=0))
    for w in (1.0, 0.5, 0.25):
        study.enqueue_trial({"with_mse": True, "w1": w, "w2": w})
    study.optimize(objective, n_trials=14)
    assert all(set(t.params) == {"with_mse", "w1", "w2"} for t in study.trials)
    best = study.best_params
    # the GP of both weights finds the bowl's minimum (random search would not, in 11 proposals)
    assert abs(math.log10(best["w1"] / BEST[0])) < 0.2 and abs(math.log10(best["w2"] / BEST[1])) < 0.2


# --- the 2-D surrogate and the answer -------------------------------------------------------------

def rows_of(pairs, loss="ssim+gmsd", role="search", **extra):
    return [{"loss": loss, "experiment": loss, "role": role, "with_mse": True, "w": None, "w1": a, "w2": b,
             "value": bowl(a, b), "status": "COMPLETED", "epochs_trained": 4, "seed": 0, **extra}
            for a, b in pairs]


PAIRS = [(1, 1), (0.5, 0.5), (0.25, 0.25), (0.3, 0.02), (0.8, 0.1), (0.05, 0.05), (2, 0.01), (0.5, 0.2),
         (0.1, 0.3), (0.6, 0.04)]


GRID = [(a, b) for a in (0.02, 0.15, 1.0, 5.0) for b in (0.003, 0.03, 0.2, 2.0)]


def test_surface_recommends_near_the_known_minimum():
    fit = fit_objective_surface(GRID, [bowl(*p) for p in GRID], [4] * len(GRID), epochs=4,
                                bounds=(1e-3, 10.0))
    assert fit.mean.shape == (61, 61) and fit.n_observations == len(GRID)
    w1, w2 = fit.recommended
    assert abs(math.log10(w1 / BEST[0])) < 0.3 and abs(math.log10(w2 / BEST[1])) < 0.3
    assert fit.objective.low <= fit.objective.estimate <= fit.objective.high
    with pytest.raises(ValueError, match="full-length"):
        fit_objective_surface(PAIRS, [1.0] * len(PAIRS), [3] + [4] * 9, epochs=4, bounds=(1e-3, 10.0))


def test_surface_interval_on_each_weight_holds_the_minimum_and_widens_when_flat():
    """The recommended pair carries a 95% interval per weight (the minimiser's marginals): it
    holds the true minimum of a clear bowl, and is much wider where the surface is noise."""
    fit = fit_objective_surface(GRID, [bowl(*p) for p in GRID], [4] * len(GRID), epochs=4,
                                bounds=(1e-3, 10.0))
    for i, rec, best in zip(fit.weight_intervals, fit.recommended, BEST):
        assert i.low <= rec <= i.high and i.low <= best <= i.high and i.level == 0.95
    noise = torch.Generator().manual_seed(0)
    flat = [1 + 0.03 * float(torch.randn(1, generator=noise)) for _ in GRID]
    unresolved = fit_objective_surface(GRID, flat, [4] * len(GRID), epochs=4, bounds=(1e-3, 10.0))
    decades = lambda i: math.log10(i.high / i.low)
    for sharp, wide in zip(fit.weight_intervals, unresolved.weight_intervals):
        assert decades(wide) > 2 * decades(sharp) and decades(wide) > 1.5


def test_joint_answer_and_verdict_against_the_best_single_loss():
    base = [{"loss": "mse", "experiment": "baseline", "role": "baseline", "with_mse": True, "w": None,
             "value": 1.0 + 0.01 * k, "status": "COMPLETED", "epochs_trained": 4, "seed": k}
            for k in range(3)]
    rows = base + rows_of(PAIRS[:3], role="paper") + rows_of(PAIRS[3:])
    ans = answer(rows, ["ssim+gmsd"], epochs=4, bounds={"ssim+gmsd": (1e-3, 10.0)}, lower_is_better=True,
                 n_per_config=3)
    a = ans["losses"]["ssim+gmsd"]
    assert a["joint"] and a["surrogate"]["fitted"] and set(a["surrogate"]["recommended"]) == {"w1", "w2"}
    assert set(a["candidates"]) == {"recommended", "best_paper", "best_observed"}
    assert a["candidates"]["best_paper"] == {"with_mse": True, "w1": 0.25, "w2": 0.25}
    merged = merge_candidates({"x": {"with_mse": True, "w1": 1.0, "w2": 2.0},
                               "y": {"with_mse": True, "w1": 1.0, "w2": 2.0},
                               "z": {"with_mse": True, "w1": 1.0, "w2": 3.0}})
    assert list(merged) == ["x+y", "z"]
    single = a["comparisons"]["recommended_vs_best_single"]
    assert single["verdict"] is None and single["note"].startswith(joint.NOT_RESOLVED)
    assert "--loss ssim --loss gmsd --loss ssim+gmsd" in single["note"]

    # with confirmation runs of the pair and of a single loss: a verdict
    rec = a["candidates"]["recommended"]
    confirm = [{**r, "role": "confirm", "candidate": "recommended", "seed": 1000 + k,
                "value": 0.21 + 0.002 * k} for k, r in enumerate(rows_of([(rec["w1"], rec["w2"])] * 3))]
    ssim = [{"loss": "ssim", "experiment": "ssim-confirm", "role": "confirm", "with_mse": True, "w": 2.0,
             "candidate": "recommended", "value": 0.30 + 0.002 * k, "status": "COMPLETED",
             "epochs_trained": 4, "seed": 1000 + k} for k in range(3)]
    ans = answer(rows + confirm + ssim, ["ssim+gmsd"], epochs=4, bounds={"ssim+gmsd": (1e-3, 10.0)},
                 lower_is_better=True, n_per_config=3)
    single = ans["losses"]["ssim+gmsd"]["comparisons"]["recommended_vs_best_single"]
    assert single["verdict"] == "better" and single["reference"] == "ssim w=2"
    text = "\n".join(joint.format_loss("ssim+gmsd", ans["losses"]["ssim+gmsd"], "swd"))
    assert "pair vs best single loss (ssim w=2): better" in text
