"""The best w within a distortion budget (tune_vqvae.stats.constrained) on synthetic runs with
known curves: an objective that improves with w, a PSNR that worsens with it (issue 24's
perception-distortion trade-off), run-to-run noise, fixed seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tune_vqvae.constraints import parse
from tune_vqvae.stats.constrained import LEVEL, recommend

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
    assert r.p_at_recommended >= LEVEL
    assert r.objective[1] <= r.objective[0] <= r.objective[2]
    assert r.p_feasible[0] > 0.99 and r.p_feasible[-1] < 0.01  # small w keeps PSNR, large loses it


def test_a_higher_is_better_objective_and_a_percent_budget():
    r = answer(0, "val_psnr >= -1%", objective=ssim_like, lower_is_better=False)  # bound 24.75 dB
    assert r.threshold == pytest.approx(r.baseline_mean * 0.99)
    assert psnr_true(np.log10(r.recommended_w)) >= PSNR_0 * 0.99
    assert r.recommended_w < r.unconstrained_w
    assert r.objective[0] == pytest.approx(ssim_like(np.log10(r.recommended_w)), abs=0.02)


def test_the_baselines_own_error_makes_the_recommendation_safer():
    """The bound is the baseline's mean - 0.2 dB, and that mean is an estimate: the noisier the
    baseline's runs, the less sure a w near the bound is feasible (`bound_error`), so the
    recommendation moves away from it; with an exact baseline nothing changes."""
    from tune_vqvae.stats.constrained import bound_error

    c = parse("val_psnr >= -0.2")
    assert bound_error(c, [25.0]) == 0.0 and bound_error(c, [25.0, 25.0, 25.0]) == 0.0
    assert bound_error(c, [24.9, 25.1]) == pytest.approx(np.std([24.9, 25.1], ddof=1) / np.sqrt(2))
    assert bound_error(parse("val_psnr >= -10%"), [24.9, 25.1]) == pytest.approx(0.9 * 0.1)
    # pooled with the fit's noise: 1 df of the baseline's spread (0.1414) and 9 of the fit's (0.05)
    pooled = np.sqrt((0.02 + 9 * 0.05**2) / 10 / 2)
    assert bound_error(c, [24.9, 25.1], fit_noise=0.05, fit_df=9) == pytest.approx(pooled)
    assert bound_error(c, [25.0], fit_noise=0.05, fit_df=9) == pytest.approx(0.05)  # one run: the fit's
    w, obj, psnr, _ = runs(2)
    kw = dict(constraint=c, lower_is_better=True, epochs_trained=[EPOCHS] * N, epochs=EPOCHS, bounds=BOUNDS)
    exact = recommend(w, obj, psnr, [PSNR_0] * 3, **kw)
    noisy = recommend(w, obj, psnr, [PSNR_0 - 0.1, PSNR_0, PSNR_0 + 0.1], **kw)
    sure = exact.p_feasible > 0.5
    assert np.all(noisy.p_feasible[sure] <= exact.p_feasible[sure] + 1e-12)
    assert noisy.recommended_w < exact.recommended_w


def test_a_stricter_level_recommends_a_safer_w():
    assert answer(1, level=0.99).recommended_w <= answer(1, level=0.8).recommended_w


def test_an_infeasible_budget_is_a_note_not_an_exception():
    r = answer(0, "val_psnr >= 1")  # 1 dB better than MSE's own PSNR: no w gives it
    assert r.recommended_w is None and r.objective is None
    assert r.note.startswith("no searched w keeps val_psnr at least 1 dB above the MSE baseline's mean "
                             "with probability >= 99% (likeliest: w = ")
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


# --- the budget at the confirmation: the objective's paired statistics on the metric ---------

from tune_vqvae.stats.constrained import (  # noqa: E402
    OVER,
    WITHIN,
    add_budget,
    budget_comparisons,
    budget_entry,
    budget_text,
    budget_verdict,
)
from tune_vqvae.stats.intervals import Interval  # noqa: E402
from tune_vqvae.stats.race import RaceSettings, race_comparisons, race_of, raced_candidate  # noqa: E402
from tune_vqvae.vocab import NOT_RESOLVED  # noqa: E402


@pytest.mark.parametrize(("budget", "low", "high", "mean", "said"), [
    ("val_psnr >= -0.2", -0.12, 0.02, 25.0, WITHIN),
    ("val_psnr >= -0.2", -0.2, 0.1, 25.0, WITHIN),  # the bound itself is within (slack <= 0)
    ("val_psnr >= -0.2", -0.5, -0.21, 25.0, OVER),
    ("val_psnr >= -0.2", -0.3, -0.1, 25.0, NOT_RESOLVED),
    ("val_psnr >= -1%", -0.24, -0.1, 25.0, WITHIN),  # bound -0.25 dB: 1% of 25
    ("val_psnr >= -1%", -0.4, -0.26, 25.0, OVER),
    ("val_ssim >= -2%", -0.012, 0.0, 0.5, NOT_RESOLVED),  # bound -0.01
    ("val_mse <= +5%", -0.001, 0.0009, 0.02, WITHIN),  # a lower-is-better metric: bound +0.001
    ("val_mse <= +5%", 0.0011, 0.003, 0.02, OVER),
    ("val_psnr >= -0.2", -np.inf, np.inf, 25.0, NOT_RESOLVED),  # a look that spent nothing
])
def test_the_budget_verdict_is_the_whole_interval_against_the_bound(budget, low, high, mean, said):
    assert budget_verdict(parse(budget), Interval((low + high) / 2, low, high), mean) == said


def test_a_percent_budget_of_a_zero_mean_is_not_resolved():
    assert budget_verdict(parse("val_psnr >= -1%"), Interval(0.0, -0.1, 0.1), 0.0) == NOT_RESOLVED


def _rows():
    """Confirmation runs on 4 common seeds: within_budget 0.05 dB below the baseline's PSNR,
    best_observed 1 dB below; a shared seed effect of 0.3 dB that the pairing removes."""
    rng = np.random.default_rng(0)
    shared = {s: 0.3 * rng.standard_normal() for s in range(1000, 1004)}
    rows = []
    for role, loss, cand, w, drop in (("baseline", "mse", None, None, 0.0),
                                      ("confirm", "gmsd", "within_budget", 0.1, -0.05),
                                      ("confirm", "gmsd", "best_observed", 3.0, -1.0)):
        for s, e in shared.items():
            psnr = 25.0 + drop + e + 0.005 * rng.standard_normal()
            rows.append({"experiment": f"{loss}-confirm", "loss": loss, "role": role, "with_mse": True,
                         "w": w, "value": 30 - psnr, "val_psnr": psnr, "status": "COMPLETED",
                         "epochs_trained": 2, "seed": s, "candidate": cand})
    return rows


def test_the_fixed_stage_judges_the_budget_on_the_same_seeds_at_95():
    got = budget_comparisons(_rows(), "gmsd", epochs=2, constraint=parse("val_psnr >= -0.2"))
    assert set(got) == {"within_budget_vs_baseline", "best_observed_vs_baseline"}
    mine, far = got["within_budget_vs_baseline"], got["best_observed_vs_baseline"]
    assert (mine["verdict"], far["verdict"]) == (WITHIN, OVER)
    assert mine["method"] == "paired-t" and mine["pairs"] == 4 and mine["level"] == 0.95
    assert mine["diff"] == pytest.approx(-0.05, abs=0.01) and mine["bound"] == pytest.approx(-0.2)
    assert "min_effect" not in mine and "largest_gain" not in mine  # the objective's margin: not the budget's
    said = budget_text(mine)
    assert said.startswith("val_psnr >= -0.2: within budget (-0.0") and " dB [" in said and " at " not in said
    json.dumps(got, allow_nan=False)


def test_add_budget_names_the_candidate_and_judges_each_comparison_with_the_baseline():
    a = {"constrained": {"recommended_w": 0.1}, "candidates": {"recommended": {"with_mse": True, "w": 3.0}},
         "comparisons": {"within_budget_vs_baseline": {"verdict": "equivalent"},
                         "best_observed_vs_baseline": {"verdict": "better"}}}
    add_budget(a, _rows(), "gmsd", epochs=2, constraint=parse("val_psnr >= -0.2"))
    assert a["candidates"]["within_budget"] == {"with_mse": True, "w": 0.1}
    assert a["comparisons"]["within_budget_vs_baseline"]["budget"]["verdict"] == WITHIN
    assert a["comparisons"]["best_observed_vs_baseline"]["budget"]["verdict"] == OVER
    none = {"constrained": {"recommended_w": None, "note": "..."}, "candidates": {}, "comparisons": {}}
    add_budget(none, _rows(), "gmsd", epochs=2, constraint=parse("val_psnr >= -0.2"))
    assert none["candidates"] == {}  # no w within the budget: nothing more to confirm


def test_too_few_runs_give_no_budget_verdict():
    b = budget_entry({"verdict": None, "n_candidate": 1, "n_reference": 2, "note": "needs 2"},
                     parse("val_psnr >= -0.2"))
    assert b["verdict"] is None and b["note"] == "needs 2"
    assert budget_text(b) == "val_psnr >= -0.2: no verdict (needs 2)"


def test_the_race_confirms_the_best_w_within_the_budget_merged_with_its_twins():
    rec, within = {"with_mse": True, "w": 0.3}, {"with_mse": True, "w": 0.05}
    assert raced_candidate({"recommended": rec, "best_observed": rec}) == {"recommended": rec}
    assert raced_candidate({"recommended": rec, "within_budget": within}) == {"within_budget": within}
    assert raced_candidate({"recommended": within, "best_paper": rec, "within_budget": dict(within)}) == \
        {"recommended+within_budget": within}


def test_a_race_judges_the_budget_at_the_objectives_look_and_level():
    from test_stats_race import EPOCHS as RACE_EPOCHS
    from test_stats_race import _live_race

    rng = np.random.default_rng(3)
    means = {"baseline": 5.0, "gmsd:within_budget": 4.9}
    _, rows = _live_race(rng, means, {c: 0.3 for c in means}, budget=20, min_effect=5.0)
    for r in rows:
        r["val_psnr"] = 30 - r["value"]  # the mock's PSNR: 0.1 dB better than the baseline's
    raced = race_of(rows, RaceSettings(20, 5.0), epochs=RACE_EPOCHS, lower_is_better=True)
    objective = race_comparisons(raced, "gmsd", RACE_EPOCHS)["within_budget_vs_baseline"]
    b = budget_comparisons(rows, "gmsd", epochs=RACE_EPOCHS, constraint=parse("val_psnr >= -0.5"),
                           raced=raced)["within_budget_vs_baseline"]
    assert b["round"] == objective["round"] and b["level"] == pytest.approx(objective["level"])
    assert objective["level"] > 0.95
    assert b["method"] == "paired-t (repeated)" and b["pairs"] == objective["pairs"]
    assert b["diff"] == pytest.approx(-objective["diff"])  # PSNR = 30 - the objective, pair by pair
    assert b["verdict"] == budget_verdict(parse("val_psnr >= -0.5"),
                                          Interval(b["diff"], b["low"], b["high"]), b["reference_mean"])
    assert f" at {100 * b['level']:.4g}%" in budget_text(b)


def test_the_confirmations_baseline_runs_never_move_the_confirmed_recommendation():
    """The answer after the confirmation recommends the w the confirmation ran: the budget's
    bound is the baseline experiment's, as when the sampler and the candidates used it."""
    from tune_vqvae.stats.constrained import constrained_answer

    w, obj, psnr, base = runs(0)
    rows = [{"experiment": "baseline", "loss": "mse", "role": "baseline", "with_mse": True, "w": None,
             "value": 70.0, "val_psnr": float(p), "status": "COMPLETED", "epochs_trained": EPOCHS, "seed": s}
            for s, p in enumerate(base)]
    rows += [{"experiment": "gmsd", "loss": "gmsd", "role": "search", "with_mse": True, "w": float(x),
              "value": float(v), "val_psnr": float(p), "status": "COMPLETED", "epochs_trained": EPOCHS,
              "seed": 500 + i} for i, (x, v, p) in enumerate(zip(w, obj, psnr))]
    kw = dict(epochs=EPOCHS, bounds=BOUNDS, lower_is_better=True, constraint=parse("val_psnr >= -0.2"))
    before = constrained_answer(rows, "gmsd", **kw)
    later = [{**rows[0], "experiment": "baseline-confirm", "val_psnr": PSNR_0 + 1.0, "seed": 1000 + k}
             for k in range(6)]  # a confirmation's baseline runs, 1 dB off: a different mean
    after = constrained_answer(rows + later, "gmsd", **kw)
    assert after == before and before["recommended_w"] is not None
    assert before["baseline_mean"] == pytest.approx(float(np.mean(base)))
