"""The answer as estimates (tune_vqvae.stats) on known rows: only full-length runs enter the
surrogate, the candidates, and verdicts from fresh confirmation seeds against the baseline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tune_vqvae import stats
from tune_vqvae.curves import realistic
from tune_vqvae.stats import answer as ans
from tune_vqvae.stats import answer_text


def row(role, w, value, *, with_mse=True, status="COMPLETED", epochs=6, seed=0, candidate=None, loss="gmsd"):
    experiment = {"baseline": "baseline", "confirm": loss + "-confirm"}.get(role, loss)
    return {
        "experiment": experiment,
        "loss": "mse" if role == "baseline" else loss,
        "role": role,
        "with_mse": with_mse,
        "w": w,
        "value": value,
        "status": status,
        "epochs_trained": epochs,
        "stopped": status == "STOPPED",
        "seed": seed,
        "candidate": candidate,
    }


def search_rows():
    rows = [row("paper", w, realistic("gmsd", True, w, 0, 6, 6)) for w in (1.0, 0.5, 0.25)]
    rows.append(row("paper", None, 98.0, with_mse=False))
    rows += [row("search", w, realistic("gmsd", True, w, 0, 6, 6)) for w in (0.003, 0.03, 0.1, 0.3, 3.0)]
    rows.append(row("search", 0.001, 1.0, status="STOPPED", epochs=2))  # early value: must stay out
    return rows


def test_surrogate_uses_full_length_runs_only_and_recommends_inside_the_range():
    rows = search_rows()
    runs = ans.search_stage(rows, "gmsd", 6)
    assert len(runs) == 9 and all(r["status"] == "COMPLETED" for r in runs)
    fit = ans.fit_surrogate(runs, 6, (1e-3, 10.0), lower_is_better=True)
    assert fit["fitted"] and fit["n_observations"] == 8  # the no-MSE run has no w
    assert 0.003 <= fit["recommended_w"] <= 3.0  # never outside the observed w
    wi = fit["w_interval"]
    assert wi["low"] <= fit["recommended_w"] <= wi["high"]
    assert len(fit["log10_w"]) == len(fit["mean"]) == len(fit["low"]) == len(fit["high"])
    # every run trained seed 0 (searches before 2026-12-01): the band is that seed's curve, and
    # the console says so; with a seed per run (the search's way now) it is a band over seeds
    assert fit["seeds"] == [0]
    said = lambda f: answer_text.format_loss(
        "gmsd", {"surrogate": f, "candidates": {}, "comparisons": {}}, "swd")[0]
    assert "(surrogate of 8 full-length runs, all at seed 0: that seed's curve;" in said(fit)
    for k, r in enumerate(runs):
        r["seed"] = 500 + k
    assert "(surrogate of 8 full-length runs, each at its own seed;" in \
        said(ans.fit_surrogate(runs, 6, (1e-3, 10.0), lower_is_better=True))
    assert np.all(np.array(fit["low"]) <= np.array(fit["high"]))
    named = ans.candidates(runs, fit, lower_is_better=True)
    assert set(named) == {"recommended", "best_paper", "best_observed"}
    paper = [r for r in runs if r["role"] == "paper"]
    best_paper = min(paper, key=lambda r: r["value"])
    assert named["best_paper"] == {"with_mse": True, "w": best_paper["w"]}
    assert named["best_observed"]["w"] == min(runs, key=lambda r: r["value"])["w"]


def test_candidates_that_coincide_are_run_once():
    named = {
        "recommended": {"with_mse": True, "w": 0.3},
        "best_paper": {"with_mse": True, "w": 0.5},
        "best_observed": {"with_mse": True, "w": 0.5},
    }
    assert ans.merge_candidates(named) == {
        "recommended": {"with_mse": True, "w": 0.3},
        "best_paper+best_observed": {"with_mse": True, "w": 0.5},
    }


def test_verdicts_come_from_confirmation_runs_against_the_baseline():
    base = [row("baseline", None, v, seed=s) for s, v in enumerate([70.0, 71.0, 69.0])]
    better = [
        row("confirm", 0.3, v, seed=1000 + s, candidate="recommended")
        for s, v in enumerate([60.0, 61.0, 59.5])
    ]
    same = [
        row("confirm", 0.5, v, seed=1000 + s, candidate="best_paper+best_observed")
        for s, v in enumerate([70.5, 69.0, 71.5])
    ]
    # a lucky search-stage run is not a confirmation run: it never enters a verdict
    lucky = [row("search", 0.5, 10.0)]
    c = ans.comparisons(base + better + same + lucky, "gmsd", 6, lower_is_better=True)
    assert c["recommended_vs_baseline"]["verdict"] == "better"
    assert c["recommended_vs_baseline"]["high"] < 0 and c["recommended_vs_baseline"]["n_candidate"] == 3
    assert c["best_paper_vs_baseline"]["verdict"] == "equivalent"  # [-3.3%, +4.2%]: inside +-5%
    assert c["best_observed_vs_baseline"] == c["best_paper_vs_baseline"]
    assert c["recommended_vs_best_paper"]["verdict"] == "better"
    assert c["recommended_vs_baseline"]["percent"] == pytest.approx(100 * (60.1667 - 70) / 70, abs=0.01)
    worse = ans.compare([80.0, 81.0, 79.0], [70.0, 71.0, 69.0], lower_is_better=True)
    assert worse["verdict"] == "worse"
    assert ans.compare([80.0], [70.0, 71.0], lower_is_better=True)["verdict"] is None


def _crn_rows(seeds, rho: float = 0.95):
    """The baseline on its own seeds 0-2 and on the confirmation seeds, a candidate on the
    latter: the measured noise model, same-seed runs correlated at rho (curves.seed_noise)."""
    curve = realistic
    base = [row("baseline", None, curve("mse", True, None, s, 6, 6, rho=rho), seed=s) for s in (0, 1, 2)]
    base += [row("baseline", None, curve("mse", True, None, s, 6, 6, rho=rho), seed=s) for s in seeds]
    cand = [row("confirm", 0.3, curve("gmsd", True, 0.3, s, 6, 6, rho=rho), seed=s, candidate="recommended")
            for s in seeds]
    return base, cand


def test_verdicts_pair_same_seed_runs_and_say_their_correlation():
    seeds = range(1000, 1008)
    base, cand = _crn_rows(seeds)
    c = ans.comparisons(base + cand, "gmsd", 6, lower_is_better=True)["recommended_vs_baseline"]
    assert c["method"] == "paired-t" and c["pairs"] == 8 and c["n_reference"] == 11
    r = c["correlation"]
    assert r["low"] < r["estimate"] < r["high"] and r["estimate"] > 0.8
    # the same runs, unpaired: Welch is wider (here the spreads differ, 5.2% vs ~2%, so the
    # pairing removes only the shared part: sd(a - b) >= |sd(a) - sd(b)|)
    welch = ans.compare([x["value"] for x in cand], [x["value"] for x in base[3:]], lower_is_better=True)
    assert welch["method"] == "welch" and welch["pairs"] == 0 and welch["correlation"] is None
    assert c["high"] - c["low"] < 0.8 * (welch["high"] - welch["low"])
    diffs = [a["value"] - b["value"] for a, b in zip(cand, base[3:])]
    assert c["diff"] == pytest.approx(np.mean(diffs))
    assert ans.pairing_text(c) == f"paired, r = {r['estimate']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
    assert ans.pairing_text(welch) == "unpaired"
    assert answer_text.describe_comparison(c, "w=0.3", "MSE baseline").endswith(ans.pairing_text(c))


def test_old_searches_without_the_baseline_on_the_confirmation_seeds_stay_unpaired():
    base, cand = _crn_rows(range(1000, 1003))
    c = ans.comparisons(base[:3] + cand, "gmsd", 6, lower_is_better=True)["recommended_vs_baseline"]
    assert c["method"] == "welch" and c["pairs"] == 0  # seeds 0-2 vs 1000-1002: nothing pairs
    few = ans.comparisons(base + cand, "gmsd", 6, lower_is_better=True)["recommended_vs_baseline"]
    assert few["pairs"] == 3 and few["correlation"] is None  # r needs 4 pairs
    assert ans.pairing_text(few) == "paired (3 pairs)"
    no_seeds = [{**x, "seed": None} for x in base + cand]  # rows that never said their seed
    assert ans.comparisons(no_seeds, "gmsd", 6, lower_is_better=True)["recommended_vs_baseline"]["pairs"] == 0


def test_baseline_noise_and_the_console_answer():
    base = [67.1, 70.9, 64.8, 66.2, 66.5]
    rows = search_rows() + [row("baseline", None, v, seed=s) for s, v in enumerate(base)]
    a = stats.search_answer(
        rows, ["gmsd"], epochs=6, bounds={"gmsd": (1e-3, 10.0)}, lower_is_better=True, n_per_config=3
    )
    b = a["baseline"]
    assert b["n"] == 5 and 0.02 < b["cv"] < 0.05 and b["n_per_config"] == 3
    assert 0.05 < b["detectable_effect"] < 0.2 and b["seeds_for_effect"] > 10
    text = stats.format_answer(a, "swd")
    assert "gmsd: recommended w=" in text and "no confirmation runs" in text
    assert "to resolve 2% you need about" in text


def test_the_answer_imports_neither_ray_nor_torch():
    code = (
        "import sys, tune_vqvae.stats, tune_vqvae.curves; print(sorted({'ray', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the verdicts against the baseline with the equivalence margin (issue 21) ----------------


def _seeded(rng, true_gain: float, seeds: int, rho: float = 0.8):
    """The baseline and a recommended candidate on common seeds 1000.., SWD-like (67, 3.5%
    run-to-run noise), same-seed runs correlated at rho; the candidate `true_gain` (a
    fraction) below the baseline."""
    shared = rng.normal(size=seeds)
    own = rng.normal(size=seeds)
    base = [row("baseline", None, 67 * (1 + 0.035 * z), seed=1000 + s) for s, z in enumerate(shared)]
    cand = [row("confirm", 0.3, 67 * (1 - true_gain) * (1 + 0.035 * (rho * z + (1 - rho**2) ** 0.5 * e)),
                seed=1000 + s, candidate="recommended") for s, (z, e) in enumerate(zip(shared, own))]
    return base + cand


def _answer(rows, **kw):
    return stats.search_answer(search_rows() + rows, ["gmsd"], epochs=6, bounds={"gmsd": (1e-3, 10.0)},
                               lower_is_better=True, n_per_config=3, **kw)


def test_no_true_gain_over_many_seeds_is_equivalent_and_the_answer_rules_out_a_gain():
    # (this draw's r is 0.80, as drawn; of 200 seeds of `_seeded` 190 give "equivalent", 10
    # a resolved small difference: the 5% the 95% interval errs)
    a = _answer(_seeded(np.random.default_rng(4), 0.0, 16))
    c = a["losses"]["gmsd"]["comparisons"]["recommended_vs_baseline"]
    assert c["pairs"] == 16 and c["verdict"] == "equivalent" and c["min_effect"] == 5.0
    assert -5 <= c["percent_low"] < 0 < c["percent_high"] <= 5
    assert c["largest_gain"] == pytest.approx(-c["percent_low"]) and 0 < c["largest_gain"] < 5
    text = stats.format_answer(a, "swd")
    assert "vs MSE baseline: equivalent within 5% (" in text
    assert f"a gain over {c['largest_gain']:.3g}% is ruled out at 95%" in text
    # the margin is the user's: the same runs with --min-effect 1 cannot claim equivalence
    tight = _answer(_seeded(np.random.default_rng(4), 0.0, 16), min_effect=1.0)
    assert tight["losses"]["gmsd"]["comparisons"]["recommended_vs_baseline"]["verdict"] == "not resolved"


def test_a_clear_gain_is_better_and_too_few_seeds_are_not_resolved():
    a = _answer(_seeded(np.random.default_rng(2), 0.10, 8))
    c = a["losses"]["gmsd"]["comparisons"]["recommended_vs_baseline"]
    assert c["verdict"] == "better" and c["percent_high"] < 0 and c["largest_gain"] > 5
    assert "vs MSE baseline: better (" in stats.format_answer(a, "swd")
    few = [row("baseline", None, v, seed=1000 + s) for s, v in enumerate([67.0, 70.5, 64.9])]
    few += [row("confirm", 0.3, v, seed=1000 + s, candidate="recommended")
            for s, v in enumerate([69.8, 64.0, 66.1])]  # no gain, 3 seeds, the pairs uncorrelated
    c = _answer(few)["losses"]["gmsd"]["comparisons"]["recommended_vs_baseline"]
    assert c["verdict"] == "not resolved" and (c["percent_low"] < -5 or c["percent_high"] > 5)


def test_higher_is_better_the_largest_gain_is_the_upper_end():
    c = ans.compare([31.0, 31.2, 30.9], [30.0, 30.1, 29.9], lower_is_better=False, min_effect=5.0)
    assert c["verdict"] == "better" and c["largest_gain"] == pytest.approx(c["percent_high"])
    assert "min_effect" not in ans.compare([31.0, 31.2], [30.0, 30.1], lower_is_better=False)


POSITIVE = "must be a percentage > 0"


@pytest.mark.parametrize("value, words", [("0", POSITIVE), ("-1", POSITIVE), ("abc", "a number, got 'abc'")])
def test_a_bad_min_effect_exits_2_with_one_line(tmp_path, capsys, value, words):
    from processes import run

    out = tmp_path / "out"
    assert run(["--loss", "gmsd", "--mock", "--min-effect", value, "--storage-path", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --min-effect") and words in err[0], err
    assert not out.exists()


def test_the_report_reads_the_margin_the_search_saved(tmp_path):
    import json

    from analysis.answer import saved_min_effect
    from tune_vqvae.search import SearchConfig
    from tune_vqvae.vocab import SETTINGS_FILE

    new, old = tmp_path / "new", tmp_path / "old"
    for d, cfg in ((new, SearchConfig(losses=["gmsd"], min_effect=2.5)), (old, None)):
        d.mkdir()
        saved = {"losses": ["gmsd"], "bounds": {}} if cfg is None else vars(cfg)
        (d / SETTINGS_FILE).write_text(json.dumps(saved))
    assert saved_min_effect([new]) == 2.5
    assert saved_min_effect([old]) == 5.0  # a search from before it was saved: the default
    assert SearchConfig.from_dict({"losses": ["gmsd"]}).min_effect == 5.0
