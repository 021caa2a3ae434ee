"""Where a search's files go (`Layout`): a directory, or a URI for the experiments with the
search-level files on the driver; and the upload of the Optuna journal next to them."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import threading
from pathlib import Path

from ray import tune

from ..data import DEFAULT_CACHE
from ..errors import UserError, atomic_write_bytes, ensure_writable_dir, missing_dirs
from ..storage import is_uri, uri_join, uri_split
from ..vocab import JOURNAL_FILE, RESULTS_CSV, RESULTS_JSON, SETTINGS_FILE
from ._config import SearchConfig
from ._runner import say

MIN_FREE_BYTES = 64 << 20  # a storage path with less free space is refused up front


def local_searches_dir() -> Path:
    """Where a search with URI storage keeps its search-level files (TUNE_VQVAE_CACHE)."""
    return Path(DEFAULT_CACHE).expanduser() / "searches"


class Layout:
    """Where a search's files go.

    A directory (local, NFS, EFS): everything in `<storage>/<name>/`. A URI (s3://...): the
    Tune experiments go to `<storage>/<name>/` (Tune's storage_path, read and written by
    every node); the search-level files (search.json, the Optuna journal, results.csv/json)
    live in `local` = $TUNE_VQVAE_CACHE/searches/<name> on the driver, because Optuna's
    journal appends to and locks a POSIX file, which object storage cannot do. Copies go
    next to the experiments: search.json when the search starts, the journal before each
    experiment snapshot (`JournalUpload`), all of them when it ends. `--resume` on a machine
    without `local` (a new head node) fetches them back first (`fetch`)."""

    def __init__(self, storage_path: str, name: str):
        self.name, self.storage_path = name, storage_path
        self.created: list[Path] = []  # directories check_writable made
        if is_uri(storage_path):
            self.storage = uri_join(storage_path, name)  # Tune's storage_path of the experiments
            self.local = local_searches_dir() / name
        else:
            self.storage = str(Path(storage_path).expanduser().resolve() / name)
            self.local = Path(self.storage)

    @classmethod
    def of(cls, directory: str) -> Layout:
        """The layout of an existing search directory (--resume DIR): a path or a URI."""
        if is_uri(directory):
            parent, name = uri_split(directory)
            return cls(parent, name)
        d = Path(directory).expanduser().resolve()
        return cls(str(d.parent), d.name)

    @property
    def remote(self) -> bool:
        return is_uri(self.storage)

    def experiment(self, exp: str) -> str:
        return uri_join(self.storage, exp) if self.remote else f"{self.storage}/{exp}"

    def settings_json(self, cfg: SearchConfig, spaces: dict | None = None) -> str:
        """search.json: the settings (the resolved objective among them), each loss's weight
        bounds (`SearchSpace.bounds`, which the report reads), and where this driver keeps the
        search-level files (the experiments' searcher state refers to the journal by that path)."""
        bounds = {loss: list(s.bounds()) for loss, s in (spaces or {}).items()}
        return json.dumps({**dataclasses.asdict(cfg), "bounds": bounds, "driver_files": str(self.local)},
                          indent=1)

    def check_writable(self) -> None:
        """Creates `local` (`created`: the directories that were new, for a failed search to
        remove) after refusing a read-only or full file system."""
        existing = next(p for p in (self.local, *self.local.parents) if p.exists())
        if os.statvfs(existing).f_flag & os.ST_RDONLY:  # read-only, however much is free
            raise UserError(f"storage path {str(self.local)!r} is on a read-only file system; "
                            f"choose a writable --storage-path")
        free = shutil.disk_usage(existing).free  # before creating anything there
        if free < MIN_FREE_BYTES:
            raise UserError(f"storage path {str(self.local)!r} is full ({free >> 20} MiB free, "
                            f"a search needs at least {MIN_FREE_BYTES >> 20} MiB); free space "
                            f"or choose another --storage-path")
        self.created = missing_dirs(self.local)
        ensure_writable_dir(self.local, "storage path")
        if self.remote:
            try:
                fs, path = self._bucket()
                fs.create_dir(path)
                with fs.open_output_stream(f"{path}/.write-test"):
                    pass
                fs.delete_file(f"{path}/.write-test")
            except Exception as e:  # pyarrow raises OSError/ArrowInvalid/... per backend
                raise UserError(f"storage path {self.storage!r} is not writable ({e}); "
                                f"check the URI and credentials") from None

    def _bucket(self):
        return _filesystem(self.storage)

    def upload(self, files: list[str]) -> None:
        """Copy the search-level `files` from `local` next to the experiments (URI storage)."""
        if not self.remote:
            return
        fs, path = self._bucket()
        for f in files:
            if (self.local / f).exists():
                with _upload_lock:  # one PUT per file: never half a file in the bucket
                    data = (self.local / f).read_bytes()
                    if f == JOURNAL_FILE:  # whole lines: the next append must follow a complete one
                        data = data[:data.rfind(b"\n") + 1]
                    with fs.open_output_stream(f"{path}/{f}") as out:
                        out.write(data)

    def fetch(self) -> None:
        """--resume of a URI search on a machine without its search-level files (a new head
        node): copy them from the bucket into `local`, search.json last (it marks a whole
        copy). Nothing if the bucket has no search.json (the caller says so)."""
        fs, path = self._bucket()
        try:
            with fs.open_input_stream(f"{path}/{SETTINGS_FILE}") as f:
                settings = f.read()
        except FileNotFoundError:
            return
        except Exception as e:  # unreachable endpoint, credentials, ...
            raise UserError(f"--resume: cannot read {self.storage.partition('?')[0]} ({e}); "
                            f"check the URI, its endpoint options and credentials") from None
        try:
            driver = json.loads(settings).get("driver_files")
        except (json.JSONDecodeError, AttributeError):
            raise UserError(f"--resume: {SETTINGS_FILE} in {self.storage.partition('?')[0]} is damaged; "
                            f"copy an intact one there (the search's first driver has it in "
                            f"$TUNE_VQVAE_CACHE/searches/{self.name})") from None
        if driver and Path(driver) != self.local:
            cache = Path(driver).parent.parent
            raise UserError(f"--resume: this search's experiments refer to its Optuna journal as "
                            f"{driver}/{JOURNAL_FILE}; resume with TUNE_VQVAE_CACHE={cache} (a "
                            f"directory you can create here), not {self.local.parent.parent}")
        ensure_writable_dir(self.local, "storage path")
        for f in (JOURNAL_FILE, RESULTS_CSV, RESULTS_JSON):
            try:
                with fs.open_input_stream(f"{path}/{f}") as src:
                    atomic_write_bytes(self.local / f, src.read())
            except FileNotFoundError:  # results: written at the end only
                continue
        atomic_write_bytes(self.local / SETTINGS_FILE, settings)


_upload_lock = threading.Lock()  # experiments upload the one journal from their own threads


@functools.lru_cache(maxsize=8)
def _filesystem(storage: str):
    """(filesystem, path) of a storage URI, made once: the journal goes up at every snapshot."""
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(storage)


class JournalUpload(tune.Callback):
    """URI storage: the Optuna journal goes next to the experiments before each snapshot of
    an experiment (Tune collects the callbacks' state, then uploads the snapshot), so the
    bucket's journal holds every trial a snapshot's searcher state names, and a new head
    node can resume. It changes at every reported epoch: one PUT of it per snapshot, about
    what Tune's own snapshot costs. Holds plain values: Tune pickles it with the experiment."""

    warned = False  # one warning per process for failed uploads

    def __init__(self, storage_path: str, name: str):
        self.storage_path, self.name = storage_path, name

    def get_state(self):
        try:
            Layout(self.storage_path, self.name).upload([JOURNAL_FILE])
        except Exception as e:  # a network blip must not end the search: the next snapshot retries
            if not JournalUpload.warned:
                JournalUpload.warned = True
                say(f"warning: uploading the Optuna journal failed ({str(e).splitlines()[0]}); the search "
                    f"goes on and retries at the next snapshot (only --resume on a new head node needs it)")
        return None  # no state of its own to save
