"""A distortion budget through the whole search (issue 24, `--constraint`) on the mock
trainable (its val_psnr is 30 - its objective): the baseline runs first and sets the budget's
bound, every completed Optuna trial keeps its constrained metric for the sampler, results.json
holds the constrained recommendation as strict JSON, the report recomputes the same one from
the trial directories, and --resume refuses another budget."""

from __future__ import annotations

import json
import os

import optuna
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters
from processes import run, study  # noqa: E402
from test_report_agrees import _same  # noqa: E402

from tune_vqvae.sampler import CONSTRAINT_VALUE  # noqa: E402


def _strict(text: str) -> dict:
    """json.loads refusing NaN and Infinity (results.json must be strict JSON)."""
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.slow
def test_a_budgeted_search_runs_the_baseline_first_and_answers_within_it(ray_cluster, tmp_path, capsys):
    rc = run(["--mock", "--loss", "gmsd", "--epochs", "2", "--num-samples", "8", "--baseline-seeds", "2",
              "--confirm-seeds", "0", "--constraint", "val_psnr >= -0.5",
              "--storage-path", str(tmp_path), "--name", "budget"])
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
    assert c["constraint"] == "val_psnr >= -0.5" and c["level"] == 0.95
    assert c["baseline_mean"] == pytest.approx(30 - 1.0, abs=0.02)  # the mock's baseline: 1.0
    assert c["threshold"] == pytest.approx(c["baseline_mean"] - 0.5)
    assert c["recommended_w"] is not None and c["p_feasible_at_recommended"] >= 0.95, c
    console = "\n".join(out)
    assert "within budget val_psnr >= -0.5" in console and "recommended w=" in console

    # the report recomputes the same answer from the trial directories and search.json
    from analysis.load import choose_objective, load, saved_objective
    from analysis.tables import analyse

    experiments, trials = load([str(exp)])
    a = analyse(trials, choose_objective(trials, None, saved_objective(experiments)))
    _same(a.answer["losses"]["gmsd"]["constrained"], c, "gmsd.constrained")

    # --resume keeps the budget: another one is refused, in one line, before Ray is touched
    assert run(["--resume", str(exp), "--constraint", "val_psnr >= -0.3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--constraint val_psnr >= -0.3 (saved: val_psnr >= -0.5)" in err[0], err
