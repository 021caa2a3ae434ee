"""A distortion budget through the whole search (issue 24, `--constraint`) on the mock
trainable (its val_psnr is 30 - its objective): the baseline runs first and sets the budget's
bound, every completed Optuna trial keeps its constrained metric for the sampler, results.json
holds the constrained recommendation as strict JSON, the report recomputes the same one from
the trial directories, and --resume refuses another budget. The best w within the budget is
confirmed (beside the other candidates with --confirm-seeds, as the race's candidate with
--confirm-budget), and every comparison against the baseline carries the budget's verdict on
the same runs, at the objective's level."""

from __future__ import annotations

import json
import os

import optuna
import pandas as pd
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters
from processes import run, study  # noqa: E402
from test_report_agrees import _same  # noqa: E402

from tune_vqvae.sampler import CONSTRAINT_VALUE  # noqa: E402
from tune_vqvae.stats.constrained import BUDGET_VERDICTS, LEVEL, budget_text  # noqa: E402


def _strict(text: str) -> dict:
    """json.loads refusing NaN and Infinity (results.json must be strict JSON)."""
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


COMMON = ["--mock", "--loss", "gmsd", "--epochs", "2", "--num-samples", "8", "--baseline-seeds", "2",
          "--constraint", "val_psnr >= -0.5"]


def _recomputed(exp):
    """The report's analysis of a search directory (the answer recomputed from its trials)."""
    from analysis.load import choose_objective, load, saved_objective
    from analysis.tables import analyse

    experiments, trials = load([str(exp)])
    return analyse(trials, choose_objective(trials, None, saved_objective(experiments)))


def _within_budget_confirmed(exp, doc: dict, console: str, a) -> dict:
    """The within-budget w ran on confirmation seeds, its comparison with the baseline carries
    the budget's verdict (said on the console, in the report's verdict rows), and the report
    recomputes the whole answer; its comparison."""
    from analysis.answer import comparisons_frame

    ans = doc["answer"]["losses"]["gmsd"]
    w = ans["constrained"]["recommended_w"]
    assert w is not None and ans["candidates"]["within_budget"] == {"with_mse": True, "w": w}
    rows = pd.read_csv(exp / "results.csv")
    ran = rows[(rows.role == "confirm") & rows.candidate.fillna("").str.split("+").apply(
        lambda names: "within_budget" in names)]
    assert len(ran) >= 2 and ran.w.tolist() == pytest.approx([w] * len(ran)), rows[rows.role == "confirm"]
    c = ans["comparisons"]["within_budget_vs_baseline"]
    b = c["budget"]
    assert b["verdict"] in BUDGET_VERDICTS and b["constraint"] == "val_psnr >= -0.5"
    assert b["level"] == c["level"] and b["pairs"] == c["pairs"] >= 2 and b["bound"] == pytest.approx(-0.5)
    assert all("budget" in x for k, x in ans["comparisons"].items() if k.endswith("_vs_baseline"))
    assert f"; budget {budget_text(b)}" in console
    _same(a.answer["losses"]["gmsd"], ans, "gmsd")
    v = comparisons_frame(a.comparisons)
    mine = v[v.why.str.contains("best w within budget")]
    assert len(mine) == 1 and mine.budget_verdict.iloc[0] == b["verdict"], v
    assert mine.budget_low.iloc[0] == pytest.approx(b["low"], rel=1e-9)
    return c


@pytest.mark.slow
def test_a_budgeted_search_runs_the_baseline_first_and_answers_within_it(ray_cluster, tmp_path, capsys):
    rc = run([*COMMON, "--confirm-seeds", "2", "--storage-path", str(tmp_path), "--name", "budget"])
    assert rc == 0
    exp = tmp_path / "budget"
    out = capsys.readouterr().out.splitlines()

    # the baseline ran to completion before any loss trial reported, then the budget was said
    said = [i for i, line in enumerate(out) if line.startswith("budget: ")]
    assert len(said) == 1, out
    line = out[said[0]]
    assert "val_psnr at most 0.5 dB below the MSE baseline's mean" in line and "2 runs" in line
    baseline = [i for i, s in enumerate(out) if s.startswith("[baseline]")]
    gmsd = [i for i, s in enumerate(out) if s.startswith("[gmsd]")]
    assert baseline and gmsd and max(baseline) < said[0] < min(gmsd)

    # the saved setting, in its canonical form
    assert json.loads((exp / "search.json").read_text())["constraint"] == "val_psnr >= -0.5"

    # every completed trial of the study carries its val_psnr (raw) for the sampler's slack
    s = study(exp, "gmsd")
    done = [t for t in s.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 8
    for t in done:
        assert t.user_attrs[CONSTRAINT_VALUE] == pytest.approx(30 - t.value)  # the mock's val_psnr

    # the constrained recommendation, strict JSON, printed in one line
    doc = _strict((exp / "results.json").read_text())
    c = doc["answer"]["losses"]["gmsd"]["constrained"]
    assert c["constraint"] == "val_psnr >= -0.5" and c["level"] == LEVEL
    assert c["baseline_mean"] == pytest.approx(30 - 1.0, abs=0.02)  # the mock's baseline: 1.0
    assert c["threshold"] == pytest.approx(c["baseline_mean"] - 0.5)
    assert c["recommended_w"] is not None and c["p_feasible_at_recommended"] >= LEVEL, c
    console = "\n".join(out)
    assert "within budget val_psnr >= -0.5" in console and "recommended w=" in console

    # the report recomputes the same answer from the trial directories and search.json; the
    # within-budget w was confirmed beside the others, its budget judged at 95% on the same seeds
    a = _recomputed(exp)
    _same(a.answer["losses"]["gmsd"]["constrained"], c, "gmsd.constrained")
    confirmed = _within_budget_confirmed(exp, doc, console, a)
    assert confirmed["level"] == 0.95 and confirmed["method"] == "paired-t"

    # --resume keeps the budget: another one is refused, in one line, before Ray is touched
    assert run(["--resume", str(exp), "--constraint", "val_psnr >= -0.3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--constraint val_psnr >= -0.3 (saved: val_psnr >= -0.5)" in err[0], err


@pytest.mark.slow
def test_a_budgeted_race_confirms_the_best_w_within_the_budget(ray_cluster, tmp_path, capsys):
    assert run([*COMMON, "--confirm-budget", "12", "--storage-path", str(tmp_path), "--name", "race"]) == 0
    exp = tmp_path / "race"
    doc = _strict((exp / "results.json").read_text())
    console = capsys.readouterr().out
    # the race's one candidate of the loss is the best w within the budget, not the unconstrained one
    raced = doc["answer"]["race"]["candidates"]
    assert len(raced) == 1 and "within_budget" in raced[0].partition(":")[2].split("+"), raced
    c = _within_budget_confirmed(exp, doc, console, _recomputed(exp))
    # the budget's interval is the objective's look: its rounds and nominal level
    assert c["method"] == c["budget"]["method"] == "paired-t (repeated)"
    assert c["budget"]["round"] == c["round"] and c["budget"]["level"] == c["level"]
