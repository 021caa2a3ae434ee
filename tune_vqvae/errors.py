"""Bad input, diverging runs, and the file writes that must never leave half a file."""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
import signal
import sys
import tempfile
from pathlib import Path


class UserError(Exception):
    """Bad input from the user: one line saying what is wrong and how to fix it."""


class UnsafeFileError(UserError):
    """A data file (a checkpoint) holding objects that could run code when loaded: refused,
    never skipped quietly."""


class DivergedError(RuntimeError):
    """The training loss, or any metric of the run, became NaN or infinite (perceptual losses
    without MSE can diverge; a loss can return NaN on evaluation images)."""

    def __init__(self, epoch: int, what: str):
        super().__init__(f"training diverged at epoch {epoch}: {what} is not finite")
        self.epoch = epoch


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, `kill`, a preempted node) taken the way Ctrl-C is: the long work
    stops at its next safe point and saves what it has; exit status 143 (128 + SIGTERM)."""


def terminate_like_ctrl_c() -> None:
    """From now on SIGTERM raises `Terminated` in the main thread (as SIGINT raises
    KeyboardInterrupt). Install it after anything that sets its own handler (ray.init does)."""

    def raise_terminated(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, raise_terminated)


def check_finite(metrics: dict, epoch: int) -> None:
    """DivergedError naming the first NaN or infinite number in `metrics`: every metric a run
    reports must be finite, or the run is diverged (never a completed run with a NaN value)."""
    for key, value in metrics.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
            raise DivergedError(epoch, key)


def cli_entry(main):
    """Wrap a CLI main so that a UserError ends with exit status 2 and one line, no traceback."""

    @functools.wraps(main)
    def wrapped(argv=None):
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt as e:
            terminated = isinstance(e, Terminated)
            print("terminated" if terminated else "interrupted", file=sys.stderr)
            raise SystemExit(128 + (signal.SIGTERM if terminated else signal.SIGINT)) from None

    return wrapped


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same directory, then rename: readers see all or nothing."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results should read like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download(url: str, dest: str | os.PathLike, timeout: float) -> None:
    """Fetch `url` into `dest` with a timeout (torch.hub has none: a firewalled node would
    hang), written atomically (a cut download never leaves half a weights file)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as r:
        data = r.read()
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def ensure_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Create `path` if needed and prove we can write there, or raise UserError."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a file, not a directory; choose a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UserError(
            f"{what} {str(path)!r} is not writable ({e.strerror}); "
            f"choose a directory you can write to"
        ) from None
    return path


def missing_dirs(path: str | os.PathLike) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first: what creating it
    will create (and `remove_empty_dirs` removes again when the run fails)."""
    path = Path(path).expanduser().absolute()
    return [p for p in (path, *path.parents) if not p.exists()]


def remove_empty_dirs(dirs: list[Path], leftovers: tuple[str, ...] = ()) -> None:
    """Remove `dirs` (deepest first) while they hold nothing but the files named in `leftovers`
    (a lock file): a failed run leaves no empty directory behind, and never removes a file."""
    for d in dirs:
        try:
            if any(p.name not in leftovers for p in d.iterdir()):
                return
            for name in leftovers:
                (d / name).unlink(missing_ok=True)
            d.rmdir()
        except OSError:  # gone already, or not ours to remove
            return


@contextlib.contextmanager
def writable_dir_for_run(path: str | os.PathLike, what: str):
    """`ensure_writable_dir(path)` for the block; if the block fails, the directories it created
    are removed again where they stayed empty (a failed run leaves no empty --out behind)."""
    created = missing_dirs(path)
    path = ensure_writable_dir(path, what)
    try:
        yield path
    except BaseException:
        remove_empty_dirs(created)
        raise
