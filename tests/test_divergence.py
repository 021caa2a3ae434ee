"""Divergence with the real trainer (not the mock's injected error): a tiny VQ-VAE driven to a
non-finite loss by a huge weight or learning rate.

- `python -m tune_vqvae.train`: exit 2, one line naming the epoch and the settings to lower,
  nothing of the diverged epoch written;
- a search trial (`train_vqvae`): DIVERGED at its epoch, FAIL in the Optuna journal, not
  retried (divergence is deterministic), the search goes on; an injected NaN on the real
  trainable takes the same path (`inject_faults` runs inside the trainable's `try`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna
import pandas as pd
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters

from processes import run, study  # noqa: E402

from tune_vqvae.train._cli import main as train_main  # noqa: E402

TINY_CLI = ["--epochs", "2", "--hidden", "8", "--codebook-size", "16", "--train-images", "128",
            "--val-images", "32", "--batch-size", "32", "--device", "cpu"]


@pytest.mark.parametrize("args,advice", [
    (["--loss", "gmsd", "--weight", "1e300"], "lower --weight (now 1e+300) or --lr (now 0.0002)"),
    (["--lr", "1e8"], "lower --lr (now 1e+08)"),
    (["--loss", "gmsd", "--no-mse", "--lr", "1e8"],
     "lower --lr (now 1e+08), or train with MSE (drop --no-mse)"),
])
def test_train_cli_diverged_run_exits_2_with_one_line(tmp_path, capsys, args, advice):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        train_main([*args, *TINY_CLI, "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0] == f"error: training diverged at epoch 1: train_loss is not finite; {advice}"
    # the diverged epoch left no checkpoint and no metrics: nothing to resume from by mistake
    assert not (out / "checkpoint.pt").exists() and not (out / "metrics.json").exists()


TINY_SEARCH = ["--epochs", "2", "--hidden", "16", "--codebook-size", "32", "--train-images", "128",
               "--val-images", "64", "--batch-size", "32", "--fid-samples", "64", "--objective", "swd"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Fixed parameter w with value 1e\\+300 is out of range")
def test_real_trial_driven_to_nan_ends_diverged_fail_in_optuna_not_retried(ray_cluster, tmp_path):
    """w = 1e300 makes the real loss infinite in the first epoch; w = 0.5 gets an injected NaN
    before epoch 2. Both end DIVERGED (no retry although --max-failures 2), their Optuna trials
    FAIL; the baseline completes and the search exits 0."""
    space = tmp_path / "space.yaml"
    space.write_text("losses: [gmsd]\ngrid: true\n"
                     "points: [{with_mse: true, w: 1.0e+300}, {with_mse: true, w: 0.5}]\n")
    rc = run(["--space", str(space), *TINY_SEARCH, "--max-failures", "2", "--storage-path", str(tmp_path),
              "--name", "nan", "--baseline-seeds", "1", "--confirm-seeds", "0",
              "--faults", json.dumps({"nan_at_epoch": 2, "only_w": 0.5})])
    assert rc == 0
    exp = tmp_path / "nan"
    rows = pd.read_csv(exp / "results.csv")
    assert len(rows) == 3
    assert rows[rows.role == "baseline"].status.item() == "COMPLETED"
    huge, injected = rows[rows.w == 1e300].iloc[0], rows[rows.w == 0.5].iloc[0]
    assert huge.status == "DIVERGED" and huge.epochs == 1
    assert "diverged at epoch 1: train_loss is not finite" in huge.error
    assert injected.status == "DIVERGED" and injected.epochs == 2
    assert "diverged at epoch 2: train_loss (injected) is not finite" in injected.error

    for row, epochs in ((huge, [1]), (injected, [1, 2])):
        trial = Path(row.path)
        results = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert [r["epoch"] for r in results] == epochs  # each epoch once, no retry
        assert [r["training_iteration"] for r in results] == [r["iterations_since_restore"]
                                                             for r in results]  # never restored
        assert results[-1]["diverged"] == 1.0 and results[-1]["objective"] != results[-1]["objective"]
        assert not (trial / "error.txt").exists()
    snap = json.loads(sorted((exp / "gmsd").glob("experiment_state-*.json"))[-1].read_text())
    for meta, run_meta in snap["trial_data"]:
        assert json.loads(meta)["status"] == "TERMINATED"
        assert json.loads(run_meta).get("num_failures", 0) == 0

    trials = {t.params["w"]: t for t in study(exp, "gmsd").trials}
    assert {w: t.state for w, t in trials.items()} == {1e300: optuna.trial.TrialState.FAIL,
                                                      0.5: optuna.trial.TrialState.FAIL}
    assert trials[1e300].user_attrs["diverged_at_epoch"] == 1
    assert trials[0.5].user_attrs["diverged_at_epoch"] == 2

    from analysis.load import DIVERGED, load

    _, frame = load([str(exp)])
    assert set(frame[frame.loss == "gmsd"].state) == {DIVERGED}


# --- NaN in any reported metric, not only the training loss ---------------------------------

NAN_ON_EVAL_PLUGIN = '''
import torch
from tune_vqvae.losses import Metric


def factory():
    """An L1 distance that is NaN without gradients: passes the load check, NaN on evaluation."""
    def build(image_size):
        def l1(a, b):
            value = (a - b).abs().flatten(1).mean(1)
            return value if torch.is_grad_enabled() else value * float("nan")
        return l1
    return Metric("nan_on_eval", "distance", 0.0, build)
'''


@pytest.fixture
def nan_on_eval(tmp_path, monkeypatch):
    (tmp_path / "nan_on_eval_plugin.py").write_text(NAN_ON_EVAL_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "nan_on_eval_plugin:factory"


def test_train_cli_nan_on_evaluation_is_divergence(tmp_path, capsys, nan_on_eval):
    """A loss that is NaN only on the validation images: val_recon is not finite, so the run
    diverged (exit 2, one line), never a finished run with a NaN metric."""
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        train_main(["--loss", nan_on_eval, *TINY_CLI, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("error: training diverged at epoch 1: val_recon is not finite; lower --weight")
    assert not (out / "checkpoint.pt").exists() and not (out / "metrics.json").exists()


def test_check_finite_names_the_first_nan_or_inf_number():
    from tune_vqvae.errors import DivergedError, check_finite

    check_finite({"epoch": 1.0, "val_recon": 0.5, "node_id": "abc", "diverged": False}, 1)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(DivergedError, match="epoch 3: fid is not finite"):
            check_finite({"val_recon": 0.5, "fid": bad, "swd": bad}, 3)


@pytest.mark.slow
def test_mock_trial_with_a_nan_metric_is_diverged_fail_and_the_table_agrees(ray_cluster, tmp_path, capsys):
    """val_recon NaN at epoch 2 of w = 0.25 (a plugin NaN on evaluation, as the mock reports
    it): DIVERGED in results.csv and the console table, FAIL in Optuna, not retried; the other
    trials complete and the summary has a best."""
    rc = run(["--mock", "--loss", "gmsd", "--epochs", "3", "--num-samples", "4", "--max-failures", "2",
              "--storage-path", str(tmp_path), "--name", "nanmetric", "--confirm-seeds", "0",
              "--baseline-seeds", "2",
              "--faults", json.dumps({"nan_metric": "val_recon", "nan_metric_at_epoch": 2, "only_w": 0.25})])
    assert rc == 0
    exp = tmp_path / "nanmetric"
    rows = pd.read_csv(exp / "results.csv")
    bad = rows[rows.w == 0.25].iloc[0]
    assert bad.status == "DIVERGED" and bad.epochs == 2
    assert "diverged at epoch 2: val_recon is not finite" in bad.error
    assert set(rows[rows.w != 0.25].status) == {"COMPLETED"}
    results = [json.loads(line) for line in (Path(bad.path) / "result.json").read_text().splitlines()]
    assert [r["epoch"] for r in results] == [1, 2]  # not retried
    states = {t.params.get("w"): t.state for t in study(exp, "gmsd").trials}
    assert states[0.25] == optuna.trial.TrialState.FAIL
    out = capsys.readouterr().out
    table_line = next(line for line in out.splitlines() if " 0.25 " in line and line.startswith("gmsd"))
    assert "DIVERGED" in table_line and "COMPLETED" not in table_line
    assert "no completed trial" not in out
    summary = json.loads((exp / "results.json").read_text())
    assert summary["best"]["gmsd"]["best"]["w"] != 0.25
