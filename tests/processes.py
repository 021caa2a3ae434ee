"""Helpers of the search and reliability tests: run the search CLI in this process, read its
Optuna journal, and stop the processes a test started by their own pid / session id (never
by name)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import optuna

from tune_vqvae import search
from tune_vqvae.vocab import JOURNAL_FILE


def run(argv) -> int:
    """The search's main in this process: its exit status (2 for bad input)."""
    try:
        return search.main(argv)
    except SystemExit as e:
        return e.code


def study(exp: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=search.journal_storage(exp / JOURNAL_FILE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Processes of session `sid` (a driver started with start_new_session and what it spawned:
    Ray's GCS, raylet and workers), read from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def kill_session(sid: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while pids := session_pids(sid):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert time.time() < deadline, f"processes of session {sid} survive SIGKILL: {pids}"
        time.sleep(0.2)


def search_env(ray_tmp: str) -> dict:
    # RAY_TMPDIR: the search's local Ray keeps its session files (and its address file) in a
    # directory of its own, so it never meets another Ray on this machine.
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": ray_tmp}
