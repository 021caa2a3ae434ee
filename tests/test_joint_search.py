"""A joint loss's search end to end on Ray with the mock trainable (a known optimum in (w1, w2)):
the reference points first, one GP over both weights (every Optuna trial carries w1 and w2),
the rows, the answer, and the analysis's contour figure."""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters
from processes import run, study  # noqa: E402

from tune_vqvae.testing import MOCK_BEST_JOINT  # noqa: E402


@pytest.mark.slow
def test_mock_joint_search_fits_one_gp_over_both_weights_and_draws_the_contour(ray_cluster, tmp_path, capsys):
    rc = run(["--mock", "--loss", "ssim+gmsd", "--epochs", "2", "--num-samples", "9",
              "--max-concurrent", "2", "--baseline-seeds", "2", "--confirm-seeds", "0",
              "--storage-path", str(tmp_path), "--name", "j"])
    assert rc == 0
    exp = tmp_path / "j"
    rows = pd.read_csv(exp / "results.csv")
    doc = json.loads((exp / "results.json").read_text())
    out = capsys.readouterr().out

    searched = rows[rows.experiment == "ssim+gmsd"]
    assert len(searched) == 9 and set(searched.status) == {"COMPLETED"} and searched.w.isna().all()
    paper = searched[searched.role == "paper"]
    assert sorted(zip(paper.w1, paper.w2)) == [(0.25, 0.25), (0.5, 0.5), (1.0, 1.0)]  # the diagonal first
    assert set(searched["mode"]) == {"mse+w1*ssim+w2*gmsd"}
    tags = {p.name.split("_", 1)[1] for p in (exp / "ssim+gmsd").iterdir() if p.is_dir()}
    assert {"w1_1", "w0.5_0.5", "w0.25_0.25"} <= tags  # trial directories name both weights

    # one GP over both weights: every trial of the study has both, and the searched pairs move
    # off the diagonal towards the mock's optimum
    trials = study(exp, "ssim+gmsd").trials
    assert len(trials) == 9 and all({"w1", "w2"} <= set(t.params) for t in trials)
    best = min((t for t in trials if t.value is not None), key=lambda t: t.value)
    want = MOCK_BEST_JOINT["ssim+gmsd"]
    assert math.dist((math.log10(best.params["w1"]), math.log10(best.params["w2"])),
                     (math.log10(want[0]), math.log10(want[1]))) < 1.0

    a = doc["answer"]["losses"]["ssim+gmsd"]
    assert a["joint"] and a["surrogate"]["fitted"] and set(a["surrogate"]["recommended"]) == {"w1", "w2"}
    assert "ssim+gmsd: recommended w=(" in out
    assert "not resolved" in a["comparisons"]["recommended_vs_best_single"]["note"]

    from analysis.cli import main as analyse

    assert analyse([str(exp), "--no-reconstructions"]) == 0
    png = exp / "analysis" / "joint_ssim+gmsd.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (exp / "analysis" / "report.md").read_text()
    assert "## Two weights at once" in report
    assert "Does ssim+gmsd beat the best single loss? not resolved" in report
    assert "mse+nan" not in report
