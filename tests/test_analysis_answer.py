"""The report's answer as estimates (issue 12) on search directories written by hand
(tests/synthetic_search.py): verdicts on known inputs, stopped trials kept out of the
surrogate and marked, the noise line, figures; experiments with and without the new
trial fields (role, seed, epochs_trained, stopped)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_search import EPOCHS, realistic_search, write_trial

from analysis.cli import main
from tune_vqvae.stats.answer import compare
from tune_vqvae.stats.intervals import describe_noise, diff_interval, mean_interval, run_noise, seeds_needed
from tune_vqvae.stats.surrogate import fit_objective_curve

BASELINE = [10.0, 11.0, 12.0]
PAPER_HALF = [8.0, 8.5, 9.0]  # mse + 0.5 * gmsd: clearly better than the baseline
FULL = {0.01: 10.6, 0.1: 9.4, 1.0: 9.9, 3.0: 12.5}  # one run each
STOPPED_W, STOPPED_VALUE = 0.002, 500.0


def _final(v: float, epochs: int = EPOCHS) -> list[float]:
    """Per-epoch values ending at v (earlier epochs worse, as in training)."""
    return [v * (1 + (epochs - e) / epochs) for e in range(1, epochs + 1)]


def known_search(root: Path, contract: bool) -> Path:
    """Baseline 3 seeds, gmsd: paper w=0.5 with 3 seeds, four single runs, one run stopped
    at epoch 2 with a value far above everything (ASHA's cut); the confirmation stage re-ran
    w=0.5 (best paper point and best observation) with 3 fresh seeds, the same values."""
    search = root / "search"
    n = iter(range(100))

    def run(exp, config, values, seed=0, stopped=False, role=None):
        extra = {"role": role, "seed": seed, "epochs_trained": len(values), "stopped": stopped} \
            if contract else None
        write_trial(search / exp, f"{next(n):05d}t", config, values, extra=extra, seed=seed)

    for s, v in enumerate(BASELINE):
        run("baseline", {"role": "baseline", "loss": "mse"}, _final(v), s, role="baseline")
    gmsd = {"role": "search", "loss": "gmsd", "with_mse": True}
    for s, v in enumerate(PAPER_HALF):
        run("gmsd", {**gmsd, "w": 0.5}, _final(v), s, role="paper")
    for w, v in FULL.items():
        run("gmsd", {**gmsd, "w": w}, _final(v), role="search")
    run("gmsd", {**gmsd, "w": STOPPED_W}, [STOPPED_VALUE * 1.5, STOPPED_VALUE], stopped=True,
        role="search")
    # the confirmation stage: the best paper point (also the best observation), 3 fresh seeds
    confirm = {**gmsd, "w": 0.5, "stage": "confirm", "candidate": "best_paper+best_observed"}
    for s, v in enumerate(PAPER_HALF):
        run("gmsd-confirm", confirm, _final(v), 1000 + s, role="confirm")
    return search


def _report(search: Path, out: Path, *extra) -> Path:
    assert main([str(search), "--out", str(out), "--no-reconstructions", *extra]) == 0
    return out


@pytest.fixture(scope="module", params=[True, False], ids=["contract", "derived"])
def known(request, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("known")
    search = known_search(root, contract=request.param)
    return search, _report(search, root / "report")


def test_verdicts_on_known_inputs(known):
    _, out = known
    v = pd.read_csv(out / "verdicts.csv")
    paper = v[v["config"] == "w=0.5"].iloc[0]
    d = diff_interval(PAPER_HALF, BASELINE)  # Welch, as the report says
    assert paper["n"] == 3 and "best paper point" in paper["why"]
    assert (paper["vs_baseline"], paper["vs_baseline_low"], paper["vs_baseline_high"]) == \
        pytest.approx((d.estimate, d.low, d.high))
    assert paper["verdict_baseline"] == "better" and d.high < 0
    m = mean_interval(PAPER_HALF)
    assert (paper["mean_low"], paper["mean_high"]) == pytest.approx((m.low, m.high))
    # a candidate the confirmation stage did not re-run (the recommended w): no interval, said
    # in words; the search-stage runs that selected it never judge it (the winner's curse)
    unconfirmed = v[v["n"] == 0]
    assert len(unconfirmed) and "recommended w" in set(unconfirmed["why"])
    for _, r in unconfirmed.iterrows():
        assert math.isnan(r["vs_baseline"]) and r["verdict_baseline"].startswith("no confirmation runs")
    md = (out / "report.md").read_text()
    assert "| gmsd | w=0.5 | best paper point" in md and "| better |" in md
    assert f"{d.estimate:+.3g} [{d.low:+.3g}, {d.high:+.3g}]" in md  # the interval is printed
    # the largest gain the runs leave possible, in % of the baseline mean, as the console says it
    gain = -100 * d.low / np.mean(BASELINE)
    assert paper["largest_gain_pct"] == pytest.approx(gain) and paper["min_effect_pct"] == 5.0
    assert f"a gain over {gain:.3g}% is ruled out at 95%" in md


def test_stopped_trial_never_enters_the_surrogate_and_is_marked(known):
    _, out = known
    trials = pd.read_csv(out / "trials.csv")
    stopped = trials[trials["w"] == STOPPED_W].iloc[0]
    assert stopped["state"] == "stopped early" and bool(stopped["stopped"])
    assert stopped["epochs"] == 2 and stopped["swd"] == pytest.approx(STOPPED_VALUE)
    # the fit is the surrogate's on the full-length runs alone, within the space's bounds
    w = [0.5] * 3 + list(FULL)
    values = PAPER_HALF + list(FULL.values())
    expected = fit_objective_curve(w, values, [EPOCHS] * len(w), epochs=EPOCHS, bounds=(0.001, 10.0))
    curve = pd.read_csv(out / "curves.csv")
    assert len(curve) == len(expected.mean)
    np.testing.assert_allclose(curve["mean"], expected.mean, rtol=1e-6)
    np.testing.assert_allclose(curve["high"], expected.high, rtol=1e-6)
    md = (out / "report.md").read_text()
    assert f"fitted on {len(w)} full-length runs; 1 stopped early" in md
    assert "stopped by the scheduler at epoch 2/6" in md  # listed with the failed and stopped
    assert (trials["role"] == "paper").sum() == 4  # w=0.5 (3 seeds) and w=1: grid points


def test_noise_and_detectable_effect_line(known):
    _, out = known
    md = (out / "report.md").read_text()
    noise = run_noise(BASELINE)
    needed = seeds_needed(noise.cv, 0.02)
    assert f"run-to-run noise {100 * noise.cv:.1f}% (std {noise.std:.3g} over 3 seeds)" in md
    assert f"to resolve 2% you need about {needed} seeds per config" in md
    assert describe_noise(noise, 3) in md  # the verdicts rest on 3 confirmation runs per candidate


def test_figures_written(known):
    _, out = known
    for name in ("weight_gmsd.png", "weight_all.png", "pareto.png"):
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000, name
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 3


def test_no_bare_single_run_gain_in_the_report(tmp_path):
    """A search with one baseline run (no noise known) and no confirmation stage: no difference
    is printed at all (the search stage's single runs judge nothing)."""
    search = tmp_path / "search"
    write_trial(search / "baseline", "00000t", {"role": "baseline", "loss": "mse"}, _final(10.0))
    for i, (w, v) in enumerate(FULL.items()):
        write_trial(search / "gmsd", f"{i:05d}g", {"role": "search", "loss": "gmsd",
                                                     "with_mse": True, "w": w}, _final(v))
    md = (_report(search, tmp_path / "r") / "report.md").read_text()
    assert "Run-to-run noise: not measured" in md
    assert "no confirmation runs" in md
    verdicts = md.split("**Verdicts from replicate runs**")[1].split("_Differences")[0]
    bullet = next(line for line in md.splitlines() if line.startswith("- **gmsd**"))
    gains = re.findall(r"[+-]\d+(?:\.\d+)?%", verdicts + bullet)  # a signed percentage
    assert verdicts.count("| gmsd |") == 3 and not gains, gains


def test_older_search_analyses_as_a_new_one(tmp_path):
    """Without role/seed/epochs_trained/stopped in the results (a search before issue 12) the
    derived fields, the fit and the verdict table equal those of the same search with them."""
    reports = {}
    for contract in (True, False):
        search = realistic_search(tmp_path / str(contract), contract=contract)
        reports[contract] = _report(search, tmp_path / f"r{contract}")
    cols = ["trial", "experiment", "role", "seed", "epochs", "stopped", "state", "swd"]
    new, old = (pd.read_csv(reports[c] / "trials.csv").sort_values("path")[cols].reset_index(drop=True)
                for c in (True, False))
    pd.testing.assert_frame_equal(new, old)
    assert set(new["role"]) == {"baseline", "paper", "search", "confirm"}
    pd.testing.assert_frame_equal(pd.read_csv(reports[True] / "curves.csv"),
                                  pd.read_csv(reports[False] / "curves.csv"))
    # the confirmation stage named its candidates in the new search; as in the search's own
    # answer, only its 3 fresh-seed runs enter the verdict (not the 2 search-stage runs at w=0.3)
    v = pd.read_csv(reports[True] / "verdicts.csv").set_index(["loss", "config"])
    assert v.loc[("gmsd", "w=0.3"), "why"] == "recommended w" and v.loc[("gmsd", "w=0.3"), "n"] == 3
    t = pd.read_csv(reports[True] / "trials.csv")
    confirm = t[(t.role == "confirm") & (t.loss == "gmsd") & np.isclose(t.w, 0.3)].swd
    searched = t[(t.role == "search") & (t.loss == "gmsd") & np.isclose(t.w, 0.3)].swd
    baseline = t[t.role == "baseline"].swd
    assert len(confirm) == 3 and len(searched) == 2
    said = compare(list(confirm), list(baseline), lower_is_better=True, min_effect=5.0)["verdict"]
    assert v.loc[("gmsd", "w=0.3"), "verdict_baseline"] == said
    # the surrogate is fitted on the search stage only, as the search fits it: not on the
    # confirmation runs (they judge the candidates the surrogate chose)
    stage = t[(t.loss == "gmsd") & t.role.isin(["paper", "search"]) & t.with_mse & ~t.stopped
              & (t.state == "completed")]
    assert f"surrogate fitted on {len(stage)} full-length runs" in (reports[True] / "report.md").read_text()


def test_higher_is_better_objective(tmp_path):
    """--objective val_psnr: the surrogate maximises; the curve is in PSNR's own sign."""
    search = realistic_search(tmp_path, losses=("gmsd",))
    out = _report(search, tmp_path / "r", "--objective", "val_psnr")
    curve = pd.read_csv(out / "curves.csv")
    assert (curve["mean"] > 0).all() and (curve["low"] <= curve["high"]).all()
    assert "higher is better" in (out / "report.md").read_text()


def test_an_epoch_a_dead_worker_cut_from_result_json_is_read_from_the_checkpoint(tmp_path):
    """Ray copies the staged result.json back over a restarted trial's, losing what was
    reported after the last sync; the checkpoint written with each report keeps it."""
    import json

    from analysis.experiment import read_experiment
    from tune_vqvae.vocab import TRIAL_STATE_FILE

    exp = tmp_path / "gmsd"
    trial = write_trial(exp, "00001abc_w0.5", {"role": "search", "loss": "gmsd", "with_mse": True,
                                               "w": 0.5}, [70.0, 68.0], planned=2)
    lines = (trial / "result.json").read_text().splitlines()
    reported = [json.loads(line) for line in lines]
    (trial / "result.json").write_text(lines[1] + "\n")  # epoch 1's line lost
    for epoch in (1, 2):
        c = trial / f"checkpoint_00000{epoch - 1}"
        c.mkdir()
        (c / TRIAL_STATE_FILE).write_text(json.dumps({"epoch": epoch, "reported": reported[:epoch]}))
    (t,) = read_experiment(exp)
    assert t.history["epoch"].tolist() == [1.0, 2.0]
    assert t.history["objective"].tolist() == [70.0, 68.0]
    assert any("read from the last checkpoint" in n for n in t.notes)
