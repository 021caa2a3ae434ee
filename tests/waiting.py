"""Waits of the tests that drive processes, each on observable state and with a deadline, so
that a hang fails the test (with what was seen) instead of blocking CI.

- `Lines(proc.stdout)`: a thread reads the lines as they come; `wait_for(predicate, timeout)`
  returns once the lines so far satisfy it, fails at the deadline or when the stream ends first.
- `wait_until(check, timeout)`: polls a check of files, a journal, a process, ...
"""

from __future__ import annotations

import threading
import time

import pytest


class Lines:
    """The lines a process writes, read by a thread so that every wait on them has a deadline."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._stream = stream
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._stream:
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        except (OSError, ValueError):  # the stream was closed under us
            pass
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def text(self, last: int = 300) -> str:
        with self._changed:
            return "".join(self.lines[-last:])

    def wait_for(self, predicate, timeout: float, what: str) -> list[str]:
        """The lines so far once `predicate(lines)` holds; fails after `timeout` seconds or when
        the stream ends without it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.lines):
                if self._ended:
                    pytest.fail(f"the process ended before {what}:\n{''.join(self.lines[-300:])}")
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {what} within {timeout:g} s:\n{''.join(self.lines[-300:])}")
                self._changed.wait(min(left, 1.0))
            return list(self.lines)

    def close(self, timeout: float = 30) -> str:
        """After the process ended: the whole output (the reader must see the end of the stream)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the output stream stays open after the process ended"
        self._stream.close()
        return self.text(last=len(self.lines))


def wait_until(check, timeout: float, what, interval: float = 0.1):
    """The first true value of `check()`, polled every `interval` s; fails after `timeout` s
    with `what` (a string, or a function giving one then: the log as it is at the deadline).
    `check` may itself fail the test (say, when the process it waits on has ended)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what() if callable(what) else what}: not within {timeout:g} s")
        time.sleep(interval)
    return value
