"""Stopping the processes a run started, by its session id (never by name): a driver started
with `start_new_session=True` and everything it spawned (Ray's GCS, raylet, workers) share its
session. Used by the load benchmark and the tests that kill drivers. Linux (/proc)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def session_pids(sid: int) -> list[int]:
    """Live processes of session `sid`, read from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def kill_session(sid: int, timeout: float = 30) -> None:
    """SIGKILL what is left of session `sid`; RuntimeError if some survive `timeout` s."""
    deadline = time.time() + timeout
    while pids := session_pids(sid):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.time() > deadline:
            raise RuntimeError(f"processes of session {sid} survive SIGKILL: {pids}")
        time.sleep(0.2)
