"""No process of a local Ray outlives the search's driver, whatever ended it (kill -9 too).

Ray's GCS, raylet, agents and workers are the driver's descendants; when the driver dies
without `ray.shutdown()` (SIGKILL, the OOM killer), some of them (the dashboard and
runtime-env agents) stay alive under PID 1 for good. A tiny watcher process, started before
Ray, keeps a list of the driver's descendants and kills the ones still alive once the driver
is gone. It learns of the driver's death from a pipe only the driver holds open (the end of
file arrives however the driver died), and runs as a plain script with the standard library
only, so that it starts in milliseconds and holds nothing of the driver's.

`python reaper.py FD PID`: FD the pipe's read end, PID the driver.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

POLL_S = 0.5  # how often the list of descendants is refreshed


def start() -> None:
    """Start the watcher of this process (call once, before Ray starts its processes). The
    pipe's write end stays open in this process only (not inheritable: Ray's children never
    hold it), so its end of file means that this process is gone."""
    if getattr(start, "write_end", None) is not None:
        return  # one watcher per process: it watches every cluster this process starts
    if not os.path.isdir("/proc"):
        return  # it reads the process table from /proc (Linux); elsewhere Ray's own clean-up only
    read_end, write_end = os.pipe()
    subprocess.Popen([sys.executable, "-I", __file__, str(read_end), str(os.getpid())],
                     pass_fds=(read_end,), stdin=subprocess.DEVNULL, close_fds=True)
    os.close(read_end)
    start.write_end = write_end  # held open for the life of the process


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            out[int(entry)] = (int(fields[1]), fields[19])
    return out


def _descendants(roots: set[int], table: dict[int, tuple[int, str]]) -> set[int]:
    found, frontier = set(), set(roots)
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def _kill(known: dict[int, str]) -> None:
    """SIGTERM, then SIGKILL what is left: only processes whose start time is the one we saw
    (a pid reused since is someone else's)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        table = _processes()
        alive = {pid for pid, start in known.items() if table.get(pid, (0, None))[1] == start}
        alive |= _descendants(alive, table)  # started after the last look
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if not alive:
            return
        known = {pid: table[pid][1] for pid in alive if pid in table}
        time.sleep(1.0)


def watch(fd: int, driver: int) -> None:
    # A Ctrl-C or a SIGTERM sent to the whole process group is the driver's to handle: the
    # watcher must outlive it to clean up after it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    known: dict[int, str] = {}
    while True:
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if ready and not os.read(fd, 1):
            break  # end of file: the driver is gone
        table = _processes()
        known.update({pid: table[pid][1] for pid in _descendants({driver}, table) - {os.getpid()}})
    _kill(known)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
