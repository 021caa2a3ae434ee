"""Bad input, diverging runs, and the file writes that must never leave half a file."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path


class UserError(Exception):
    """Bad input from the user: one line saying what is wrong and how to fix it."""


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite (perceptual losses without MSE can diverge)."""

    def __init__(self, epoch: int, what: str):
        super().__init__(f"training diverged at epoch {epoch}: {what} is not finite")
        self.epoch = epoch


def cli_entry(main):
    """Wrap a CLI main so that a UserError ends with exit status 2 and one line, no traceback."""

    @functools.wraps(main)
    def wrapped(argv=None):
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

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
