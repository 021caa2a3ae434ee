"""The command line of one training run (tune_vqvae.train._cli): run directories, TensorBoard,
resume, and bad input as one line with exit status 2."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import tiny_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tune_vqvae.train._cli import main

TINY_CLI = ["--epochs", "1", "--hidden", "8", "--codebook-size", "16", "--train-images", "256",
            "--val-images", "64", "--batch-size", "32", "--device", "cpu"]


def test_cli_run_writes_tensorboard_scalars_and_image_grid_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["--loss", "gmsd", "--weight", "0.5", *TINY_CLI, "--out", str(out)]
    assert main(args) == 0
    tb = EventAccumulator(str(out / "tb")).Reload()
    assert {"val/val_mse", "val/val_psnr", "val/val_ssim", "train/train_loss",
            "run/step_ms", "run/recon_loss_ms"} <= set(tb.Tags()["scalars"])
    assert tb.Tags()["images"] == ["reconstructions"]
    args[args.index("--epochs") + 1] = "2"
    assert main([*args, "--resume"]) == 0
    history = json.loads((out / "metrics.json").read_text())
    assert [m["epoch"] for m in history] == [1, 2]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "tune_vqvae.train", *args],
                          capture_output=True, text=True, timeout=120)


def test_existing_run_is_never_overwritten(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"precious")
    result = run_cli("--out", str(out), "--epochs", "1")
    assert result.returncode == 2 and "--resume" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert (out / "checkpoint.pt").read_bytes() == b"precious"


@pytest.mark.parametrize("args,says", [
    (["--data", "/nonexistent/data.npz"], "does not exist"),
    (["--loss", "fancy"], "unknown loss"),
    (["--loss", "ssim", "--weight", "0"], "positive"),
    (["--out", "/proc/forbidden/run"], "not writable"),
    (["--epochs", "0"], "epochs must be >= 1, got 0"),
    (["--batch-size", "-1"], "batch_size must be >= 1, got -1"),
    (["--resume"], "does not exist"),
    (["--loss", "lpips", "--lpips-weights", "/nonexistent/lpips"], "(--lpips-weights)"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, says, capsys):
    argv = ["--out", str(tmp_path / "run"), "--epochs", "1", *args]
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and says in err and len(err.splitlines()) == 1


def tiny_npz(path, side):
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (64, side, side, 3), dtype=np.uint8),
             x_test=rng.integers(0, 256, (16, side, side, 3), dtype=np.uint8))
    return path


def test_images_too_small_for_the_loss_are_refused_before_training(tmp_path, capsys):
    """8x8 is a multiple of the model's 4, but SSIM's 11-pixel window does not fit: exit 2,
    one line naming the size, the loss and the minimum."""
    data = tiny_npz(tmp_path / "small.npz", 8)
    with pytest.raises(SystemExit) as e:
        main(["--data", str(data), "--loss", "ssim", "--out", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    assert "8x8" in err and "--loss ssim" in err and "at least 11x11" in err
    assert not (tmp_path / "run").exists()  # the failed run left no empty --out behind


def test_resume_refuses_changed_flags_naming_each(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--loss", "ssim", "--weight", "0.25", *TINY_CLI, "--out", str(out)]) == 0
    before = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit) as e:
        main(["--out", str(out), "--resume", "--loss", "gmsd", "--weight", "2", "--hidden", "32",
              "--seed", "0", "--epochs", "2", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    assert "--loss (loss.name gmsd, saved: ssim)" in err and "--weight (loss.weight 2.0, saved: 0.25)" in err
    assert "--hidden (model.hidden 32, saved: 8)" in err
    assert "--seed" not in err and "--epochs" not in err  # the same value; a resume override
    assert (out / "checkpoint.pt").read_bytes() == before


def test_every_train_flag_is_a_resume_override_or_a_saved_setting():
    from tune_vqvae.train._cli import RESUME_OVERRIDES, SAVED_BY_FLAG, build_parser

    overrides = {"epochs", "device", "no_amp", "no_channels_last", "compile", "compile_mode"}
    assert {d.replace("no_", "") for d in overrides} == set(RESUME_OVERRIDES)
    dests = {a.dest for a in build_parser()._actions} - {"help", "out", "resume", "lpips_weights"}
    assert dests == set(SAVED_BY_FLAG) | overrides


def test_resume_keeps_the_runs_own_settings(tmp_path):
    out = tmp_path / "run"
    first = ["--loss", "ssim", "--weight", "0.25", *TINY_CLI, "--out", str(out)]
    assert main(first) == 0
    # Resumed with defaults for everything but --epochs: the run stays ssim, hidden 8.
    assert main(["--out", str(out), "--epochs", "2", "--device", "cpu", "--resume"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["loss"] == {"name": "ssim", "weight": 0.25, "with_mse": True}
    assert config["model"]["hidden"] == 8 and config["epochs"] == 2
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["config"]["loss"]["name"] == "ssim"


def test_damaged_checkpoint_and_bad_device_are_one_line_errors(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    (out / "config.json").write_text(json.dumps(tiny_config().to_dict()))
    for argv, says in ((["--out", str(out), "--resume"], "cannot read checkpoint"),
                       (["--out", str(tmp_path / "new"), "--device", "tpu9"], "unknown --device")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and says in err and len(err.splitlines()) == 1
    # Refused before anything was written: no TensorBoard events, the files as they were.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.json"]


def test_out_at_a_regular_file_says_it_is_a_file(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    with pytest.raises(SystemExit) as e:
        main(["--out", str(a_file), "--epochs", "1"])
    assert e.value.code == 2 and "is a file, not a directory" in capsys.readouterr().err
    assert a_file.read_text() == "keep me"
