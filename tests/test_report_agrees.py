"""The report and the search give the same answer (issue 20): one mock search with replicates,
early stopping (stopped trials), a joint pair and its part searched alongside, confirmation
runs; the report recomputes the answer from the trial directories through tune_vqvae.stats,
and its recommended w, intervals and verdicts equal results.json's and the console's, with the
equivalence margin the search saved (--min-effect 3, not the default: read from search.json)."""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters
from processes import run  # noqa: E402

from tune_vqvae import stats  # noqa: E402


def _same(mine, theirs, where="answer") -> None:
    """Equal, floats to 1e-9 relative (the report reads the values back from result.json)."""
    if isinstance(theirs, dict):
        assert set(mine) == set(theirs), where
        for k in theirs:
            _same(mine[k], theirs[k], f"{where}.{k}")
    elif isinstance(theirs, (list, tuple)):
        assert len(mine) == len(theirs), where
        for i, (m, t) in enumerate(zip(mine, theirs)):
            _same(m, t, f"{where}[{i}]")
    elif isinstance(theirs, float) and not isinstance(mine, bool):
        assert mine == pytest.approx(theirs, rel=1e-9, nan_ok=True), where
    else:
        assert mine == theirs, where


@pytest.mark.slow
def test_report_and_search_state_the_same_answer(ray_cluster, tmp_path, capsys):
    rc = run(["--mock", "--loss", "gmsd", "--loss", "ssim+gmsd", "--epochs", "3", "--num-samples", "14",
              "--replicates", "2", "--early-stop", "--grace-period", "1", "--max-concurrent", "2",
              "--baseline-seeds", "2", "--confirm-seeds", "3", "--min-effect", "3",
              "--storage-path", str(tmp_path), "--name", "agree"])
    assert rc == 0
    exp = tmp_path / "agree"
    doc = json.loads((exp / "results.json").read_text())
    rows = pd.read_csv(exp / "results.csv")
    console = capsys.readouterr().out

    # what the rules are about: replicates, stopped trials, confirmation runs of both losses
    assert (rows.replicate == 1).any() and (rows.status == "STOPPED").any()
    assert set(rows[rows.role == "confirm"].loss) == {"gmsd", "ssim+gmsd"}
    # the baseline ran the candidates' seeds (common random numbers): the verdicts are paired
    confirm_seeds = set(rows[rows.role == "confirm"].seed)
    assert confirm_seeds == {1000, 1001, 1002}
    assert set(rows[rows.experiment == "baseline-confirm"].seed) == confirm_seeds
    assert set(rows[rows.experiment == "baseline-confirm"].role) == {"baseline"}
    vs_base = doc["answer"]["losses"]["gmsd"]["comparisons"]["recommended_vs_baseline"]
    assert vs_base["pairs"] == 3 and vs_base["method"] == "paired-t" and "paired (3 pairs)" in console
    # with --early-stop the pair's reference points (and the baseline) train all epochs (issue 20 item 5)
    pair_points = rows[(rows.experiment == "ssim+gmsd") & (rows.role == "paper")]
    for ref in (pair_points, rows[rows.role == "baseline"]):
        assert len(ref) and set(ref.status) == {"COMPLETED"} and (ref.epochs == 3).all()
    saved = json.loads((exp / "search.json").read_text())
    assert saved["objective"] == doc["objective"]  # resolved, saved
    assert saved["min_effect"] == doc["answer"]["min_effect"] == vs_base["min_effect"] == 3.0

    from analysis.load import choose_objective, load, saved_objective
    from analysis.tables import analyse

    experiments, trials = load([str(exp)])
    objective = choose_objective(trials, None, saved_objective(experiments))
    assert objective == doc["objective"]
    a = analyse(trials, objective)
    for loss in ("gmsd", "ssim+gmsd"):
        mine, theirs = a.answer["losses"][loss], doc["answer"]["losses"][loss]
        assert theirs["surrogate"]["fitted"] and theirs["comparisons"]
        _same(mine, theirs, loss)
    for key in ("values", "mean", "std", "cv", "noise_budget"):
        _same(a.answer["baseline"][key], doc["answer"]["baseline"][key], f"baseline.{key}")
    assert a.answer["min_effect"] == 3.0
    for line in stats.format_answer(a.answer, objective).splitlines():
        if not line.startswith("MSE baseline"):  # (its seeds-per-config figure is the report's own)
            assert line in console, line

    # what the report prints is that answer: the verdict table and the pair's sentence
    from analysis.cli import main as report

    assert report([str(exp), "--no-reconstructions", "--out", str(tmp_path / "r")]) == 0
    verdicts = pd.read_csv(tmp_path / "r" / "verdicts.csv")
    comps = doc["answer"]["losses"]["gmsd"]["comparisons"]
    for _, v in verdicts.iterrows():
        first = {"recommended w": "recommended", "best paper point": "best_paper",
                 "best observed": "best_observed"}[v["why"].split(", ")[0]]
        c = comps[f"{first}_vs_baseline"]
        assert v["verdict_baseline"] == c["verdict"] and v["pairing"] == stats.answer.pairing_text(c)
        assert v["verdict_baseline"] in stats.equivalence.VERDICTS and v["min_effect_pct"] == 3.0
        assert v["largest_gain_pct"] == pytest.approx(c["largest_gain"], rel=1e-9)
        assert (v["vs_baseline"], v["vs_baseline_low"], v["vs_baseline_high"]) == \
            pytest.approx((c["diff"], c["low"], c["high"]), rel=1e-9)
    pair = doc["answer"]["losses"]["ssim+gmsd"]["comparisons"]["recommended_vs_best_single"]
    md = (tmp_path / "r" / "report.md").read_text()
    if pair["verdict"] is not None:
        assert f"{pair['diff']:+.4g} [{pair['low']:+.4g}, {pair['high']:+.4g}]" in md
    rec = doc["answer"]["losses"]["gmsd"]["surrogate"]["recommended_w"]
    assert f"recommended w = {rec:.3g}" in md and not math.isnan(rec)
    # the recommended w's verdict against the baseline in the console's words, gain ruled out included
    said = stats.answer.verdict_text(comps["recommended_vs_baseline"])
    assert said in console and said in md and ("is ruled out at 95%" in said or "a loss of at least" in said)
