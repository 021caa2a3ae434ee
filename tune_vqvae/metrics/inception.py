"""pytorch-fid's InceptionV3 pool3 features, and finding its weights file.

The network is built by pytorch-fid's own code (structure, patched blocks, strict load),
made to read a local weights file instead of downloading it; the file is found from
--fid-weights, $TUNE_VQVAE_FID_WEIGHTS or the torch hub cache, and downloaded there (with a
timeout) where a network exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import threading
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..errors import download as fetch_url

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_ENV = "TUNE_VQVAE_FID_WEIGHTS"
DOWNLOAD_TIMEOUT_S = 30

def _fid_weights_url() -> str:
    from pytorch_fid.inception import FID_WEIGHTS_URL

    return FID_WEIGHTS_URL


def _missing_message(where: str, reason: str, metric: str = "FID") -> str:
    return (
        f"{metric} needs the Inception weights file {FID_WEIGHTS_FILE}: {where} ({reason}); "
        f"download it from {_fid_weights_url()} and pass --fid-weights PATH or set "
        f"{WEIGHTS_ENV}=PATH (or use --objective swd, which needs no weights)"
    )


def _hub_weights_path() -> Path:
    """Where pytorch-fid's `load_state_dict_from_url` keeps the file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def check_fid_weights(cfg, download: bool = True) -> str | None:
    """Path of the weights file to use, or None when none is configured and the download
    into the torch hub cache failed. An explicitly given path that does not exist raises
    UserError: the user asked for that file, silently skipping FID would hide it."""
    explicit, origin = cfg.weights_path, "--fid-weights"
    if not explicit and os.environ.get(WEIGHTS_ENV):
        explicit, origin = os.path.abspath(os.path.expanduser(os.environ[WEIGHTS_ENV])), WEIGHTS_ENV
    if explicit:
        if not Path(explicit).is_file():
            raise UserError(_missing_message(f"{explicit!r} from {origin} is not a file", "missing"))
        return explicit
    hub = _hub_weights_path()
    if hub.is_file():
        return str(hub)
    if not download:
        return None
    try:
        fetch_url(_fid_weights_url(), hub, DOWNLOAD_TIMEOUT_S)
    except OSError:  # URLError, HTTPError, timeouts, unwritable hub dir
        return None
    return str(hub)


# torch hub's convention: the file name ends with the first 8 hex digits of its sha256.
FID_WEIGHTS_SHA256_PREFIX = FID_WEIGHTS_FILE.rsplit("-", 1)[1].split(".")[0]


def verify_fid_weights(path: str) -> str:
    """`path`, once it has proved to be pytorch-fid's Inception weights (the known hash where
    the file carries the standard name, then keys and shapes): checked once, before any trial,
    instead of failing in every trial."""
    if Path(path).name == FID_WEIGHTS_FILE and not file_sha256(path).startswith(FID_WEIGHTS_SHA256_PREFIX):
        raise UserError(f"FID weights file {path!r} does not have the sha256 of {FID_WEIGHTS_FILE} "
                        f"(damaged or incomplete download); delete it and download {_fid_weights_url()}")
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise UserError(f"FID weights file {path!r} is not a PyTorch weights file ({type(e).__name__}); "
                        f"use {FID_WEIGHTS_FILE} from {_fid_weights_url()}") from None
    InceptionFeatures(path)  # keys and shapes: a UserError naming the mismatch
    return path


def require_fid_weights(cfg, metric: str = "FID") -> str:
    """Like `check_fid_weights`, but no weights is a UserError (exit 2 before any trial) naming
    the `metric` that needs them (FID or KID: both use the Inception features)."""
    path = check_fid_weights(cfg)
    if path is None:
        where = f"not in the torch hub cache {str(_hub_weights_path())!r}"
        raise UserError(_missing_message(where, "download failed: no network?", metric))
    return path


def fid_weights_available(cfg, download: bool = True) -> bool:
    return check_fid_weights(cfg, download=download) is not None


_file_hashes: dict[tuple, str] = {}


def file_sha256(path: str) -> str:
    """Hash of the weights file, memoised on (path, size, mtime): it keys the stats cache."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _file_hashes:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _file_hashes[key] = h.hexdigest()
    return _file_hashes[key]


_patch_lock = threading.Lock()


@contextlib.contextmanager
def _pytorch_fid_loads_from(path: str):
    """Make pytorch-fid's `fid_inception_v3` read `path` instead of downloading, so the
    network is built by pytorch-fid's own code (structure, patched blocks, strict load)."""
    import pytorch_fid.inception as pfi

    def load(url, *args, **kwargs):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
            raise UserError(
                f"FID weights file {path!r} cannot be read ({type(e).__name__}); "
                f"replace it with {FID_WEIGHTS_FILE} from {url}"
            ) from None

    with _patch_lock:
        original = pfi.load_state_dict_from_url
        pfi.load_state_dict_from_url = load
        try:
            yield pfi
        finally:
            pfi.load_state_dict_from_url = original


class InceptionFeatures(nn.Module):
    """pytorch-fid's InceptionV3 pool3 block: [0, 1] images (any size) -> (N, 2048)."""

    def __init__(self, weights_path: str):
        super().__init__()
        with _pytorch_fid_loads_from(weights_path) as pfi:
            try:
                self.net = pfi.InceptionV3(
                    [pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
                    resize_input=True,
                    normalize_input=True,
                )
            except RuntimeError as e:  # load_state_dict: wrong keys or shapes
                raise UserError(
                    f"FID weights file {weights_path!r} does not fit pytorch-fid's InceptionV3 "
                    f"({str(e).splitlines()[0]}); use {FID_WEIGHTS_FILE} from {_fid_weights_url()}"
                ) from None
        self.eval()
        import pytorch_fid

        self.extractor_id = (
            f"pytorch-fid-{pytorch_fid.__version__}-inceptionv3-pool3-2048-bilinear299-"
            f"sha256:{file_sha256(weights_path)[:16]}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0].flatten(1)
