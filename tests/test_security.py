"""Nothing loaded from disk runs code: a checkpoint holding a pickled object that would run a
command is refused (exit 2, one line naming the file) by `train --resume` and the trial
restore; the analysis' refusal is tested beside its other bad input (tests/test_analysis.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_config, write_payload_checkpoint

from tune_vqvae.errors import UnsafeFileError
from tune_vqvae.train import Trainer, load_state

ROOT = Path(__file__).resolve().parent.parent


def test_payload_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    write_payload_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(UnsafeFileError, match="evil.pt"):
        load_state(tmp_path / "evil.pt")
    assert not marker.exists()


def test_train_resume_refuses_a_payload_checkpoint(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "ran"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(tiny_config().to_dict()))
    write_payload_checkpoint(out / "checkpoint.pt", marker)
    proc = subprocess.run([sys.executable, "-m", "tune_vqvae.train", "--out", str(out), "--resume"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "checkpoint.pt" in err and "could run code" in err
    assert not marker.exists()
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.json"]


def test_trial_restore_refuses_a_payload_checkpoint(tmp_path, monkeypatch):
    from ray import tune

    from tune_vqvae import trainable
    from tune_vqvae.vocab import CHECKPOINT_FILE, TRIAL_STATE_FILE

    ckpt, marker = tmp_path / "checkpoint_000001", tmp_path / "ran"
    ckpt.mkdir()
    write_payload_checkpoint(ckpt / CHECKPOINT_FILE, marker)
    (ckpt / TRIAL_STATE_FILE).write_text(json.dumps({"epoch": 1}))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: tune.Checkpoint.from_directory(str(ckpt)))
    trainer = Trainer(tiny_config(epochs=1))
    with pytest.raises(UnsafeFileError, match=CHECKPOINT_FILE):
        trainable.restore_state(lambda d: trainer.load_checkpoint(Path(d) / CHECKPOINT_FILE))
    assert not marker.exists()
