"""Security: nothing loaded from disk runs code, and a local search is not an open cluster.

- a checkpoint holding a pickled object that would run a command is refused (exit 2, one line
  naming the file) by `train --resume` and the trial restore (the analysis' refusal is tested
  beside its other bad input, tests/test_analysis.py);
- every process of a local search listens on 127.0.0.1 only, and none outlives the driver,
  whether SIGTERM, SIGINT or SIGKILL ended it (SIGTERM and SIGINT: the state saved, --resume).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import tiny_config, write_payload_checkpoint
from processes import is_loopback, kill_session, listening_addresses, search_env, session_pids
from waiting import Lines, wait_until

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
    # the trial ends once, failed, with the refusal's line (retrying would read the same file)
    with pytest.raises(trainable.DamagedCheckpoint, match="could run code"):
        trainable.restore_state(lambda d: trainer.load_checkpoint(Path(d) / CHECKPOINT_FILE))
    assert not marker.exists()


# --- a local search: loopback only, and nothing left running however the driver ends ---------

def _start_search(tmp_path: Path, ray_tmp: str) -> tuple[subprocess.Popen, Lines]:
    """A mock search in a session of its own (its processes are found by session id), slow
    enough (0.5 s an epoch) to be caught mid-run."""
    argv = [sys.executable, "-m", "tune_vqvae.search", "--mock", "--loss", "gmsd", "--epochs", "20",
            "--num-samples", "4", "--max-concurrent", "2", "--num-cpus", "2", "--confirm-seeds", "0",
            "--storage-path", str(tmp_path), "--name", "s", "--faults", json.dumps([{"sleep_s": 0.5}])]
    proc = subprocess.Popen(argv, env=search_env(ray_tmp), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, Lines(proc.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                        (signal.SIGKILL, -signal.SIGKILL)])
def test_local_search_listens_on_loopback_only_and_leaves_nothing_running(tmp_path, sig, status):
    ray_tmp = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths must fit
    proc, output = _start_search(tmp_path, ray_tmp)
    try:
        output.wait_for(lambda lines: sum("epoch 2/20" in s for s in lines) >= 2, 240,
                        "two trials at epoch 2")
        listening = listening_addresses(session_pids(proc.pid))
        proc.send_signal(sig)
        proc.wait(timeout=120)
        wait_until(lambda: not session_pids(proc.pid), 60,
                   lambda: f"processes of the search left running: {session_pids(proc.pid)}")
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_session(proc.pid)
        shutil.rmtree(ray_tmp, ignore_errors=True)
        seen = output.close()
    # the GCS, the raylet, the driver and the trial workers, each on 127.0.0.1 only
    assert len(listening) >= 4, listening
    assert all(is_loopback(address) for address in listening), listening
    assert proc.returncode == status, seen[-3000:]
    if sig != signal.SIGKILL:  # graceful: the state saved, the resume command, no stack dump
        word = "terminated" if sig == signal.SIGTERM else "interrupted"
        assert f"{word}: saving the experiment state" in seen, seen[-3000:]
        assert f"continue with: python -m tune_vqvae.search --resume {tmp_path / 's'}" in seen
        assert "Traceback" not in seen and "SIGTERM received" not in seen, seen[-3000:]
    if sig == signal.SIGTERM:
        ray_tmp = tempfile.mkdtemp(prefix="rs", dir="/tmp")
        try:
            resumed = subprocess.run([sys.executable, "-m", "tune_vqvae.search", "--resume",
                                      str(tmp_path / "s"), "--num-cpus", "2"], env=search_env(ray_tmp),
                                     cwd=ROOT, capture_output=True, text=True, timeout=300)
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        assert "COMPLETED" in resumed.stdout


@pytest.mark.slow
def test_an_in_process_search_gives_its_caller_the_sigterm_handler_back(tmp_path, monkeypatch):
    """The search takes SIGTERM for its graceful stop only while it runs: a test or a notebook
    that called it in-process gets its own handler back."""
    from processes import run

    monkeypatch.setenv("RAY_TMPDIR", tempfile.mkdtemp(prefix="rh", dir="/tmp"))
    mine = lambda signum, frame: None  # noqa: E731
    previous = signal.signal(signal.SIGTERM, mine)
    try:
        assert run(["--mock", "--loss", "gmsd", "--epochs", "1", "--num-samples", "4", "--num-cpus", "2",
                    "--storage-path", str(tmp_path), "--name", "h", "--confirm-seeds", "0",
                    "--baseline-seeds", "1"]) == 0
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)
