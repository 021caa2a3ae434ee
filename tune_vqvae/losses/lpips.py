"""LPIPS (Zhang et al. 2018) through piqa, and finding its two weights files.

piqa's `LPIPS()` downloads an AlexNet backbone (torchvision) and LPIPS's linear-layer weights
(v0.1, from the PerceptualSimilarity repository). We build it with piqa's own code, made to
read files we found: from $TUNE_VQVAE_LPIPS_WEIGHTS (a directory holding both), else the
torch hub cache, downloaded there (with a timeout) where a network exists. Without them:
exit 2 naming the missing files, as for FID.

At 32x32, AlexNet's deeper layers see 3x3 and 1x1 maps (no upsampling, as in the `lpips`
package): the value is dominated by the first two layers.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
import zipfile
from pathlib import Path

import torch

from ..errors import UserError
from ..errors import download as fetch_url

WEIGHTS_ENV = "TUNE_VQVAE_LPIPS_WEIGHTS"
BACKBONE_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet (ImageNet)
LINEAR_FILE = "alex.pth"  # LPIPS v0.1 linear layers; the `lpips` wheel ships it too
URLS = {
    BACKBONE_FILE: f"https://download.pytorch.org/models/{BACKBONE_FILE}",
    LINEAR_FILE: f"https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/{LINEAR_FILE}",
}
DOWNLOAD_TIMEOUT_S = 30
MIN_SIZE = 31  # the smallest image side AlexNet's five LPIPS layers take (found by trying piqa)


def _hub_dir() -> Path:
    """Where torch.hub's `load_state_dict_from_url` (piqa, torchvision) keeps its files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _missing_message(missing: list[str], where: str) -> str:
    return (f"LPIPS needs the weights files {', '.join(missing)}: {where}; download "
            f"{' and '.join(URLS[f] for f in missing)} (alex.pth also ships in the lpips package "
            f"as lpips/weights/v0.1/alex.pth) into a directory and pass --lpips-weights DIR "
            f"(or set {WEIGHTS_ENV}=DIR), or put them in the torch hub cache {_hub_dir()}")


def weight_files(download: bool = True) -> dict[str, Path]:
    """{file name: path} of both weights files; UserError naming the ones that are missing."""
    if os.environ.get(WEIGHTS_ENV):
        return _in_directory(os.environ[WEIGHTS_ENV], f"({WEIGHTS_ENV})")
    hub = _hub_dir()
    missing = [f for f in URLS if not (hub / f).is_file()]
    for f in missing if download else []:
        with contextlib.suppress(OSError):  # URLError, HTTPError, timeouts, unwritable hub dir
            fetch_url(URLS[f], hub / f, DOWNLOAD_TIMEOUT_S)
    missing = [f for f in URLS if not (hub / f).is_file()]
    if missing:
        why = "download failed: no network?" if download else "not downloaded"
        raise UserError(_missing_message(missing, f"not in the torch hub cache {str(hub)!r} ({why})"))
    return {f: hub / f for f in URLS}


def _in_directory(directory: str, named_by: str) -> dict[str, Path]:
    """Both files in `directory` (named by a flag or the env var), or a UserError naming the missing."""
    d = Path(directory).expanduser().absolute()
    missing = [f for f in URLS if not (d / f).is_file()]
    if missing:
        raise UserError(_missing_message(missing, f"not in {str(d)!r} {named_by}"))
    return {f: d / f for f in URLS}


def weights_env(directory: str) -> dict[str, str]:
    """The environment that points this process's or a worker's LPIPS at `directory`."""
    return {WEIGHTS_ENV: str(Path(directory).expanduser().absolute())}


def use_weights_dir(directory: str) -> None:
    """--lpips-weights DIR: checked (UserError if a file is missing), then used by this process
    (the search hands `weights_env(DIR)` to its workers)."""
    _in_directory(directory, "(--lpips-weights)")
    os.environ.update(weights_env(directory))


def weights_available(download: bool = True) -> bool:
    try:
        weight_files(download)
    except UserError:
        return False
    return True


_patch_lock = threading.Lock()


@contextlib.contextmanager
def _downloads_read(files: dict[str, Path]):
    """Make torch.hub's and torchvision's `load_state_dict_from_url` read `files` (by the URL's
    file name) instead of downloading, so that piqa's own code builds the network."""
    import torchvision.models._api as tv_api

    def load(url, *args, **kwargs):
        name = url.rsplit("/", 1)[-1]
        if name not in files:
            raise UserError(f"LPIPS asked for an unexpected weights file {url}; piqa changed?")
        try:
            return torch.load(files[name], map_location="cpu", weights_only=True)
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
            raise UserError(f"LPIPS weights file {str(files[name])!r} cannot be read "
                            f"({type(e).__name__}); replace it with {URLS[name]}") from None

    with _patch_lock:
        originals = torch.hub.load_state_dict_from_url, tv_api.load_state_dict_from_url
        torch.hub.load_state_dict_from_url = tv_api.load_state_dict_from_url = load
        try:
            yield
        finally:
            torch.hub.load_state_dict_from_url, tv_api.load_state_dict_from_url = originals


def build(image_size: int, reduction: str = "none") -> torch.nn.Module:
    """piqa's LPIPS (AlexNet, v0.1), one value per image, weights from `weight_files()`."""
    import piqa

    with _downloads_read(weight_files()):
        try:
            return piqa.LPIPS(network="alex", reduction=reduction)
        except RuntimeError as e:  # load_state_dict: wrong keys or shapes
            raise UserError(f"LPIPS weights do not fit piqa's AlexNet LPIPS "
                            f"({str(e).splitlines()[0]}); use {', '.join(URLS.values())}") from None


def write_random_weights(directory: str | os.PathLike, seed: int = 0) -> Path:
    """Both files with random weights (an AlexNet at its init, positive linear weights) in
    `directory`: the same network and cost as the real LPIPS, for tests and timing offline.
    Its values mean nothing."""
    import torchvision

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), d / BACKBONE_FILE)
    channels = (64, 192, 384, 256, 256)  # AlexNet's five LPIPS layers
    linear = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) / c for i, c in enumerate(channels)}
    torch.save(linear, d / LINEAR_FILE)
    return d
