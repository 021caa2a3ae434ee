"""Cluster storage: a search whose --storage-path is s3://..., against a local S3-compatible
server (moto's server mode, on 127.0.0.1 with dummy credentials), the driver killed with
kill -9 mid-search, `--resume`, then `python -m analysis` on a local copy of the bucket made
by the README's sync command. Nothing is lost: every trial once, every epoch once, the Optuna
study consistent with the results.

Every process started here (the S3 server, the search drivers and their Ray) is stopped by its
own pid / session id; Ray runs on 127.0.0.1 with RAY_AUTH_MODE=disabled in its own temp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pandas as pd
import pytest
from processes import free_port, kill_session, run, search_env, study
from waiting import wait_until

from tune_vqvae.search._config import SearchConfig
from tune_vqvae.search._experiments import Layout
from tune_vqvae.storage import uri_join, uri_split
from tune_vqvae.vocab import JOURNAL_FILE, RESULTS_CSV, SETTINGS_FILE, TRIAL_STATE_FILE

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
STATES = optuna.trial.TrialState


# --- the URI layout (no server) ------------------------------------------------------------


def test_layout_puts_the_experiment_name_before_the_query_string(tmp_path, monkeypatch):
    monkeypatch.setattr("tune_vqvae.search._layout.DEFAULT_CACHE", str(tmp_path / "cache"))
    base = "s3://bkt/runs/?endpoint_override=127.0.0.1:9000&scheme=http"
    layout = Layout(base, "k")
    assert layout.storage == "s3://bkt/runs/k?endpoint_override=127.0.0.1:9000&scheme=http"
    assert layout.experiment("gmsd") == "s3://bkt/runs/k/gmsd?endpoint_override=127.0.0.1:9000&scheme=http"
    assert layout.local == tmp_path / "cache" / "searches" / "k"  # the search's own files
    again = Layout.of(layout.storage)  # --resume URI
    assert (again.storage, again.name, again.local) == (layout.storage, "k", layout.local)
    assert uri_split("s3://bkt/a/b") == ("s3://bkt/a", "b")
    assert uri_join("s3://bkt", "a", "b") == "s3://bkt/a/b"
    local = Layout(str(tmp_path), "k")
    assert local.local == tmp_path / "k" and local.experiment("gmsd") == f"{tmp_path}/k/gmsd"


def test_local_copy_of_a_uri_replaces_the_old_copy_whole(tmp_path, monkeypatch):
    """The analysis's copy of a search in object storage (a file:// URI stands in for s3://)."""
    from tune_vqvae.storage import local_copy

    src = tmp_path / "bucket" / "k"
    (src / "gmsd" / "t1").mkdir(parents=True)
    (src / "gmsd" / "t1" / "result.json").write_text("{}\n")
    (src / RESULTS_CSV).write_text("a\n1\n")
    root = tmp_path / "copies"
    copy = local_copy(f"file://{src}", root)
    assert copy == root / "k" and (copy / "gmsd" / "t1" / "result.json").read_text() == "{}\n"
    (src / RESULTS_CSV).unlink()  # gone from the source: gone from the next copy too
    (copy / "stale").write_text("x")
    assert local_copy(f"file://{src}", root) == copy
    assert not (copy / RESULTS_CSV).exists() and not (copy / "stale").exists()
    assert sorted(p.name for p in root.iterdir()) == ["k"]  # no staging directory left

    monkeypatch.setenv("TUNE_VQVAE_CACHE", str(tmp_path / "cache"))
    out = subprocess.run([PY, "-m", "analysis", f"file://{tmp_path}/nothing"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.splitlines()[-1].startswith("error: ")
    assert "is not a directory there" in out.stderr and "Traceback" not in out.stderr


# --- a search on S3, its driver killed, resumed, analysed ----------------------------------


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    def listening():
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(listening, timeout, lambda: f"no S3 server on port {port}: " + log.read_text()[-2000:],
               interval=0.3)


@pytest.fixture
def s3_server(tmp_path):
    """moto's S3 server on 127.0.0.1:PORT, for this test only -> the bucket's base URI."""
    port = free_port()
    log = tmp_path / "moto.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, proc, log)
        yield port
    finally:
        kill_session(proc.pid)
        proc.wait(timeout=30)


def bucket_fs(port: int):
    import pyarrow.fs

    return pyarrow.fs.S3FileSystem(access_key="test", secret_key="test", scheme="http",
                                   endpoint_override=f"127.0.0.1:{port}")


def checkpointed_epochs(fs, exp_path: str) -> dict[str, int]:
    """{trial dir: epochs in its newest checkpoint} of an experiment in the bucket: what the
    trials themselves uploaded (the driver writes result.json only at its snapshots)."""
    import pyarrow.fs

    out = {}
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(exp_path, recursive=True))
    except (FileNotFoundError, OSError):
        return out
    newest: dict[str, str] = {}
    for info in infos:
        parts = info.path[len(exp_path) + 1:].split("/")
        if len(parts) == 3 and parts[1].startswith("checkpoint_") and parts[2] == TRIAL_STATE_FILE:
            newest[parts[0]] = max(newest.get(parts[0], ""), info.path)
    for trial, path in newest.items():
        try:
            with fs.open_input_stream(path) as f:
                out[trial] = len(json.loads(f.read())["reported"])
        except (OSError, ValueError):  # mid-upload: read it at the next poll
            pass
    return out


@pytest.mark.slow
def test_s3_storage_killed_driver_resumed_and_analysed(s3_server, tmp_path):
    port = s3_server
    base = f"s3://bkt/runs?endpoint_override=127.0.0.1:{port}&scheme=http&allow_bucket_creation=true"
    layout = Layout(base, "k")
    ray_tmp = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths must fit
    env = {**search_env(ray_tmp), "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_EC2_METADATA_DISABLED": "true", "TUNE_VQVAE_CACHE": str(tmp_path / "cache")}
    local = tmp_path / "cache" / "searches" / "k"  # the search's own files (see Layout)
    argv = [PY, "-m", "tune_vqvae.search", "--mock", "--loss", "gmsd", "--epochs", "3",
            "--num-samples", "6", "--max-concurrent", "2", "--no-early-stop", "--num-cpus", "2",
            "--storage-path", base, "--name", "k", "--faults", json.dumps({"sleep_s": 0.7}),
            "--baseline-seeds", "1", "--confirm-seeds", "0"]
    fs = bucket_fs(port)
    log = tmp_path / "driver.log"
    try:
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            # Kill once the bucket holds two finished loss trials and one cut off mid-run.
            def two_finished_one_cut_off():
                assert proc.poll() is None, "the search ended before it could be killed:\n" + \
                    log.read_text()[-3000:]
                epochs = checkpointed_epochs(fs, "bkt/runs/k/gmsd").values()
                return sum(e == 3 for e in epochs) >= 2 and any(0 < e < 3 for e in epochs)

            wait_until(two_finished_one_cut_off, 240, lambda: "two finished loss trials and one "
                       "cut off in the bucket\n" + log.read_text()[-3000:], interval=0.2)
            os.kill(proc.pid, signal.SIGKILL)  # the driver: no handler, no last snapshot
            proc.wait(timeout=30)
        finally:
            kill_session(proc.pid)  # and the Ray processes it started
        assert proc.returncode == -signal.SIGKILL
        assert (local / SETTINGS_FILE).is_file() and (local / JOURNAL_FILE).is_file()
        assert not (local / RESULTS_CSV).exists()
        with fs.open_input_stream(f"bkt/runs/k/{SETTINGS_FILE}") as f:  # uploaded at the start
            assert json.loads(f.read())["name"] == "k"
        with fs.open_input_stream(f"bkt/runs/k/{JOURNAL_FILE}") as f:  # before each snapshot
            assert f.read().endswith(b"\n")
        # A new head node: the driver's disk is gone, the search resumes from the bucket alone.
        shutil.rmtree(local)

        resumed = subprocess.run([PY, "-m", "tune_vqvae.search", "--resume", layout.storage,
                                  "--num-cpus", "2"], env=env, cwd=REPO, capture_output=True, text=True,
                                 timeout=300, start_new_session=True)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    # The analysis straight from the bucket (a local copy in the cache), on the finished search.
    analysed = subprocess.run([PY, "-m", "analysis", layout.storage, "--no-reconstructions"], env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=300)
    assert analysed.returncode == 0, analysed.stdout[-2000:] + analysed.stderr[-2000:]
    copy = tmp_path / "cache" / "copies" / "k"
    assert (copy / RESULTS_CSV).read_bytes() == (local / RESULTS_CSV).read_bytes()  # uploaded at the end
    assert (copy / JOURNAL_FILE).read_bytes() == (local / JOURNAL_FILE).read_bytes()
    assert str(copy / "analysis" / "report.md") in analysed.stdout
    assert (copy / "analysis" / "report.md").is_file()

    rows = pd.read_csv(copy / RESULTS_CSV)
    loss_rows = rows[rows.experiment == "gmsd"]
    assert len(loss_rows) == 6 and loss_rows.trial_id.is_unique  # every trial once
    assert set(rows.status) == {"COMPLETED"} and (rows.role == "baseline").sum() == 1
    from analysis.experiment import read_experiment

    trials = [t for exp in ("baseline", "gmsd") for t in read_experiment(copy / exp)]
    assert len(trials) == 7
    for t in trials:  # every epoch exactly once, across the kill, in what the analysis reads
        assert [int(e) for e in t.history["epoch"]] == [1, 2, 3], t.path

    s = study(copy, "gmsd")
    complete = [t for t in s.trials if t.state == STATES.COMPLETE]
    assert {t.user_attrs["ray_trial_id"] for t in complete} == set(loss_rows.trial_id)
    assert len(complete) == 6  # one per Ray trial, each told once
    assert not [t for t in s.trials if t.state in (STATES.RUNNING, STATES.WAITING)]
    assert all("orphaned" in t.user_attrs for t in s.trials if t.state == STATES.FAIL)


def test_resume_of_a_uri_search_on_a_new_head_node(tmp_path, monkeypatch, capsys):
    """--resume URI where the driver's files are not: fetched from next to the experiments;
    refused (exit 2, one line, nothing written) where the experiments' searcher state would
    look for the journal elsewhere, or where the URI holds no search. A file:// URI stands in
    for the bucket (the S3 test above runs the whole search)."""
    cache = tmp_path / "cache"
    monkeypatch.setattr("tune_vqvae.search._layout.DEFAULT_CACHE", str(cache))
    bucket = tmp_path / "bucket" / "k"
    bucket.mkdir(parents=True)
    uri = f"file://{bucket}"
    assert run(["--resume", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a search experiment (no search.json there nor in" in err[0], err

    layout = Layout.of(uri)
    settings = json.loads(layout.settings_json(SearchConfig(name="k", losses=["gmsd"], mock=True)))
    assert settings["driver_files"] == str(cache / "searches" / "k")
    moved = {**settings, "driver_files": "/elsewhere/cache/searches/k"}
    (bucket / SETTINGS_FILE).write_text(json.dumps(moved))
    assert run(["--resume", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resume with TUNE_VQVAE_CACHE=/elsewhere/cache" in err[0], err
    assert not layout.local.exists()

    (bucket / SETTINGS_FILE).write_text('{"name": "k", "driv')  # cut off
    assert run(["--resume", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "search.json in file://" in err[0] and "is damaged" in err[0], err
    assert not layout.local.exists()

    (bucket / SETTINGS_FILE).write_text(json.dumps(settings))
    (bucket / JOURNAL_FILE).write_bytes(b'{"op_code": 0}\n')
    layout.fetch()
    assert (layout.local / JOURNAL_FILE).read_bytes() == b'{"op_code": 0}\n'
    assert json.loads((layout.local / SETTINGS_FILE).read_text()) == settings
    assert not (layout.local / RESULTS_CSV).exists()  # not in the bucket: a search still running


def test_journal_upload_sends_whole_lines_only(tmp_path, monkeypatch, capsys):
    """A journal line being appended while it is uploaded is left for the next upload: a
    resumed search appends after the last whole line."""
    from tune_vqvae.search._experiments import JournalUpload

    monkeypatch.setattr("tune_vqvae.search._layout.DEFAULT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "bucket" / "k").mkdir(parents=True)  # a search's start creates it (check_writable)
    parent = f"file://{tmp_path / 'bucket'}"
    layout = Layout(parent, "k")
    layout.local.mkdir(parents=True)
    (layout.local / JOURNAL_FILE).write_bytes(b'{"a": 1}\n{"b": 2}\n{"c":')
    assert JournalUpload(parent, "k").get_state() is None  # Tune saves no state for it
    assert (tmp_path / "bucket" / "k" / JOURNAL_FILE).read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    shutil.rmtree(tmp_path / "bucket")  # the bucket is unreachable: a warning, the search goes on
    (layout.local / JOURNAL_FILE).write_bytes(b'{"a": 1}\n')
    assert JournalUpload(parent, "k").get_state() is None
    assert "warning: uploading the Optuna journal failed" in capsys.readouterr().out
