"""Helpers of the search and reliability tests: run the search CLI in this process, read its
Optuna journal, and stop the processes a test started by their own pid / session id (never
by name)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import optuna

from tune_vqvae import search
from tune_vqvae.sessions import kill_session, session_pids  # noqa: F401  (the tests' helpers)
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


def search_env(ray_tmp: str) -> dict:
    # RAY_TMPDIR: the search's local Ray keeps its session files (and its address file) in a
    # directory of its own, so it never meets another Ray on this machine.
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": ray_tmp}
