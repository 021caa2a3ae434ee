"""The real trainable: how a trial's config becomes a loss, and one real search with the
tiny model on CPU (2 trials, 1 epoch)."""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest
from conftest import trial_config as cfg

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters

from tune_vqvae import search  # noqa: E402
from tune_vqvae.vocab import loss_settings  # noqa: E402


def test_loss_settings_build_valid_loss_configs():
    from tune_vqvae.losses import LossConfig

    for c in (cfg(role="baseline"), cfg(w=0.01), cfg(with_mse=False)):
        name, w, with_mse = loss_settings(c)
        LossConfig(name=name, weight=w, with_mse=with_mse)  # raises UserError if invalid


@pytest.mark.slow
def test_real_trainable_tiny_model_two_trials(ray_cluster, tmp_path, capsys):
    """The real trainable through the real search: baseline + one point, 3 epochs, CPU,
    SWD evaluated at epochs 1 (every report needs an objective) and 3 (--eval-every 3),
    selected on 64 held-out training images and scored on test at the last epoch."""
    space = tmp_path / "one.yaml"
    space.write_text("losses: [gmsd]\ngrid: true\npoints: [{with_mse: true, w: 0.5}]\n")
    rc = search.main([
        "--space", str(space), "--epochs", "3", "--eval-every", "3", "--hidden", "16",
        "--codebook-size", "32", "--no-early-stop",
        "--train-images", "128", "--val-images", "64", "--batch-size", "32", "--fid-samples", "64",
        "--storage-path", str(tmp_path), "--name", "real", "--objective", "swd", "--holdout", "64",
        "--baseline-seeds", "1", "--confirm-seeds", "0",
    ])
    assert rc == 0
    exp = tmp_path / "real"
    rows = pd.read_csv(exp / "results.csv")
    assert len(rows) == 2 and set(rows.status) == {"COMPLETED"}
    assert set(rows.role) == {"baseline", "paper"}
    for _, r in rows.iterrows():
        assert math.isfinite(r.value) and r.value == pytest.approx(r.swd)
        assert 0 < r.val_ssim <= 1 and r.val_psnr > 0 and r.images_per_s > 0
        assert r.recon_loss_ms > 0 and r.step_ms > 0
        files = os.listdir(r.path)
        # TensorBoard: Ray's scalars and the Trainer's own events (curves + reconstructions)
        assert sum(f.startswith("events.out.tfevents") for f in files) >= 2, files
        checkpoints = sorted(f for f in files if f.startswith("checkpoint_"))
        assert "trainer.pt" in os.listdir(os.path.join(r.path, checkpoints[-1]))
        results = [json.loads(line) for line in open(os.path.join(r.path, "result.json"))]
        assert [x["eval_epoch"] for x in results] == [1, 1, 3]
        # The test split is scored once, at the end, on other images than the objective.
        assert ["test_swd" in x for x in results] == [False, False, True]
        final = results[-1]
        assert r.test_value == pytest.approx(final["test_swd"]) and final["test_swd"] != final["swd"]
        assert final["test_mse"] != final["val_mse"] and 0 < final["test_ssim"] <= 1
        result = results[0]
        for key in ("train_loss", "val_mse", "val_psnr", "val_ssim", "perplexity", "images_per_s",
                    "step_ms", "recon_loss_ms", "swd", "objective", "epoch"):
            assert key in result, key
        # the dataset came through the object store, not inside the config
        params = json.loads(open(os.path.join(r.path, "params.json")).read())
        assert "x_train" not in json.dumps(params) and params["train"]["model"]["hidden"] == 16
    paper = rows[rows.role == "paper"].iloc[0]
    assert paper.w == 0.5 and paper["mode"] == "mse+w*gmsd"
    out = capsys.readouterr().out
    assert "gmsd: best w=0.5" in out and "on test: test_swd" in out
