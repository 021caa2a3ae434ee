"""FID between test images and their reconstructions, cheap enough for every trial.

Protocol (comparable to pytorch-fid): 2048-d pool3 features of pytorch-fid's `InceptionV3`
with the standard TF-ported weights, fed in-memory [0, 1] tensors that it resizes
bilinearly to 299x299 and maps to [-1, 1]; the first `samples` test images against
their reconstructions; float64 statistics accumulated batch by batch (memory is D^2,
not N*D); the Fréchet distance in float64.

The real images' statistics are cached on disk per (dataset fingerprint, split, sample
count, feature extractor incl. weights hash), under a file lock so that the trials on a
node compute them once.

`swd` is the offline objective: the multi-scale sliced Wasserstein distance over
Laplacian-pyramid 7x7 patches (Karras et al. 2018, ProGAN), needing no downloaded
weights. Lower is better for both.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import threading
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import nn

from .data import DEFAULT_CACHE, ImageData
from .errors import UserError, atomic_write_bytes, ensure_writable_dir

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_ENV = "TUNE_VQVAE_FID_WEIGHTS"
FID_MODES = ("auto", "required", "off")
DOWNLOAD_TIMEOUT_S = 30
_CACHE_VERSION = 1


def _fid_weights_url() -> str:
    from pytorch_fid.inception import FID_WEIGHTS_URL

    return FID_WEIGHTS_URL


@dataclass
class FIDConfig:
    """How reconstructions are scored. `samples` is clipped to the test set (see
    `FIDEvaluator.samples`); `swd_samples` bounds the offline metric's memory."""

    samples: int = 10_000  # first N test images (2,000 reproduces the paper)
    batch_size: int = 200
    weights_path: str | None = None  # else env TUNE_VQVAE_FID_WEIGHTS, else torch hub cache
    cache_dir: str = DEFAULT_CACHE
    offline_metric: bool = True  # also compute `swd`
    fid_mode: str = "auto"  # auto: FID when weights are found; required: else UserError; off
    swd_samples: int = 1_000  # images used by the offline metric (<= samples)
    swd_patches: int = 64  # 7x7 patches per image and level (Karras: 128; 64 halves CPU time)
    seed: int = 0  # patch positions and projection directions of the offline metric

    def __post_init__(self):
        for name in ("samples", "batch_size", "swd_samples", "swd_patches"):
            low = 2 if name in ("samples", "swd_samples") else 1
            if getattr(self, name) < low:
                raise UserError(f"FID {name} must be >= {low}, got {getattr(self, name)}")
        if self.fid_mode not in FID_MODES:
            raise UserError(f"fid_mode must be one of {', '.join(FID_MODES)}; got {self.fid_mode!r}")
        if self.fid_mode == "off" and not self.offline_metric:
            raise UserError("FID is off and so is the offline metric; enable one of them")
        if self.weights_path:  # absolute now: Ray trials run in another working directory
            self.weights_path = os.path.abspath(os.path.expanduser(self.weights_path))

    @classmethod
    def from_dict(cls, d: dict) -> FIDConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise UserError(f"unknown FID setting(s) {sorted(unknown)}; remove them")
        return cls(**d)


# ---------------------------------------------------------------- weights


def _missing_message(where: str, reason: str) -> str:
    return (
        f"FID needs the Inception weights file {FID_WEIGHTS_FILE}: {where} ({reason}); "
        f"download it from {_fid_weights_url()} and pass --fid-weights PATH or set "
        f"{WEIGHTS_ENV}=PATH (or use --objective swd, which needs no weights)"
    )


def _hub_weights_path() -> Path:
    """Where pytorch-fid's `load_state_dict_from_url` keeps the file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def _download(url: str, dest: Path) -> None:
    """Fetch with a timeout (torch.hub has none: a firewalled node would hang), atomically."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r:
        data = r.read()
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, data)


def check_fid_weights(cfg: FIDConfig, download: bool = True) -> str | None:
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
        _download(_fid_weights_url(), hub)
    except OSError:  # URLError, HTTPError, timeouts, unwritable hub dir
        return None
    return str(hub)


def require_fid_weights(cfg: FIDConfig) -> str:
    """Like `check_fid_weights`, but no weights is a UserError (exit 2 before any trial)."""
    path = check_fid_weights(cfg)
    if path is None:
        where = f"not in the torch hub cache {str(_hub_weights_path())!r}"
        raise UserError(_missing_message(where, "download failed: no network?"))
    return path


def fid_weights_available(cfg: FIDConfig, download: bool = True) -> bool:
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


# ---------------------------------------------------------------- statistics


class StreamingStats:
    """Count, sum and sum of outer products in float64, updated batch by batch, so memory is
    O(D^2) whatever the number of images. Sums are taken around the first batch's mean
    (shifted data), which avoids cancellation in `S - n mu mu^T`."""

    def __init__(self):
        self.count = 0
        self._shift = self._sum = self._outer = None

    def update(self, feats: torch.Tensor) -> None:
        x = feats.detach().flatten(1)
        if x.device.type not in ("cpu", "cuda"):  # e.g. MPS has no float64
            x = x.cpu()
        x = x.to(torch.float64)
        if self._shift is None:
            self._shift = x.mean(0)
            self._sum = torch.zeros_like(self._shift)
            self._outer = torch.zeros(x.shape[1], x.shape[1], dtype=x.dtype, device=x.device)
        x = x - self._shift
        self._sum += x.sum(0)
        self._outer += x.T @ x
        self.count += x.shape[0]

    def mean(self) -> np.ndarray:
        return (self._shift + self._sum / self.count).cpu().numpy()

    def cov(self) -> np.ndarray:
        """Unbiased (N - 1), as numpy.cov(rowvar=False)."""
        if self.count < 2:
            raise ValueError(f"covariance needs at least 2 samples, have {self.count}")
        s = self._sum
        return ((self._outer - torch.outer(s, s) / self.count) / (self.count - 1)).cpu().numpy()


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) in float64.

    Tr (S1 S2)^1/2 = sum sqrt(eig(A S2 A)) with A = S1^1/2, A S2 A symmetric PSD: two
    symmetric eigendecompositions, ~7x faster than pytorch-fid's scipy sqrtm on 2048-d
    and equal to it to ~1e-12 relative (tested to 1e-6)."""
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"shape mismatch: {mu1.shape}/{mu2.shape}, {s1.shape}/{s2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = a @ s2 @ a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


# ---------------------------------------------------------------- offline metric (SWD)

SWD_PATCH = 7
SWD_MIN_RES = 16  # coarsest pyramid level (Karras et al.)
SWD_DIR_REPEATS, SWD_DIRS_PER_REPEAT = 4, 128


def _blur(x: torch.Tensor) -> torch.Tensor:
    """5x5 binomial filter, mirror padding (Karras's scipy 'mirror' = torch 'reflect')."""
    k = torch.tensor([1.0, 4, 6, 4, 1], dtype=x.dtype, device=x.device)
    k = torch.outer(k, k) / 256
    c = x.shape[1]
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k.expand(c, 1, 5, 5), groups=c)


def _pyr_up(x: torch.Tensor, size) -> torch.Tensor:
    up = x.new_zeros(*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3])
    up[..., ::2, ::2] = 4 * x
    return _blur(up)[..., : size[0], : size[1]]


def pyramid_levels(h: int, w: int) -> int:
    """Levels down to SWD_MIN_RES (32x32 -> 2: the 32 band-pass and the 16 low-pass)."""
    if min(h, w) < SWD_PATCH:
        raise UserError(f"images of {h}x{w} are smaller than the {SWD_PATCH}x{SWD_PATCH} SWD patch")
    levels, r = 1, min(h, w)
    while r // 2 >= SWD_MIN_RES:
        levels, r = levels + 1, r // 2
    return levels


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    out = []
    for _ in range(levels - 1):
        small = _blur(x)[..., ::2, ::2]
        out.append(x - _pyr_up(small, x.shape[-2:]))
        x = small
    out.append(x)
    return out


def _patches(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) and (B, P) corners -> (B*P, C, 7, 7) by one gather."""
    off = torch.arange(SWD_PATCH, device=x.device)
    rows = (ys[:, :, None] + off)[:, :, :, None]  # B, P, 7, 1
    cols = (xs[:, :, None] + off)[:, :, None, :]  # B, P, 1, 7
    b = torch.arange(x.shape[0], device=x.device)[:, None, None, None]
    p = x[b, :, rows, cols]  # advanced indices first: B, P, 7, 7, C
    return p.permute(0, 1, 4, 2, 3).reshape(-1, x.shape[1], SWD_PATCH, SWD_PATCH)


def _normalise(desc: torch.Tensor) -> torch.Tensor:
    """Per-channel zero mean, unit std over all patches of one set (Karras), in place."""
    var, mean = torch.var_mean(desc, dim=(0, 2, 3), keepdim=True, correction=0)
    return desc.sub_(mean).div_(var.sqrt_().clamp_min_(1e-8)).flatten(1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, gen: torch.Generator) -> float:
    """Mean over 4x128 random unit directions of the 1-D W1 between the projections
    (equal counts: W1 is the mean gap between the sorted projections)."""
    dists = []
    for _ in range(SWD_DIR_REPEATS):
        d = torch.randn(SWD_DIRS_PER_REPEAT, a.shape[1], generator=gen).to(a.device)
        d = d / d.norm(dim=1, keepdim=True)
        pa, pb = _sort_rows(d @ a.T), _sort_rows(d @ b.T)  # (dirs, N), rows contiguous
        pa -= pb
        dists.append(float(abs(pa).mean()))
    return float(np.mean(dists))


def _sort_rows(t: torch.Tensor):
    """Sort each row; numpy on CPU (torch.sort there is ~15x slower), torch elsewhere."""
    if t.device.type == "cpu":
        return np.sort(t.numpy(), axis=1)
    return torch.sort(t, dim=1).values


class SWDAccumulator:
    """Laplacian-pyramid patch descriptors of real and reconstructed images, same random
    positions for both; memory is bounded by the image count given to it."""

    def __init__(self, patches_per_image: int, seed: int):
        self.p = patches_per_image
        self.gen = torch.Generator().manual_seed(seed)
        self.real: list[list[torch.Tensor]] = []
        self.fake: list[list[torch.Tensor]] = []

    def update(self, real01: torch.Tensor, fake01: torch.Tensor) -> None:
        levels = pyramid_levels(*real01.shape[-2:])
        pr, pf = laplacian_pyramid(real01, levels), laplacian_pyramid(fake01, levels)
        if not self.real:
            self.real, self.fake = [[] for _ in pr], [[] for _ in pr]
        for i, (r, f) in enumerate(zip(pr, pf)):
            size = (r.shape[0], self.p)
            ys = torch.randint(0, r.shape[2] - SWD_PATCH + 1, size, generator=self.gen)
            xs = torch.randint(0, r.shape[3] - SWD_PATCH + 1, size, generator=self.gen)
            ys, xs = ys.to(r.device), xs.to(r.device)
            self.real[i].append(_patches(r, ys, xs))
            self.fake[i].append(_patches(f, ys, xs))

    def distance(self) -> float:
        """Average over levels of the SWD, x1e3 as Karras et al. report it."""
        per_level = []
        for r, f in zip(self.real, self.fake):
            a, b = _normalise(torch.cat(r)), _normalise(torch.cat(f))
            per_level.append(sliced_wasserstein(a, b, self.gen))
        return 1e3 * float(np.mean(per_level))


def swd(real01: torch.Tensor, fake01: torch.Tensor, patches: int = 64, seed: int = 0) -> float:
    """Sliced Wasserstein distance between two image sets in [0, 1] (one call)."""
    acc = SWDAccumulator(patches, seed)
    acc.update(real01.float(), fake01.float())
    return acc.distance()


# ---------------------------------------------------------------- evaluator


def _u8_to_unit(x_u8: torch.Tensor, device) -> torch.Tensor:
    return x_u8.to(device, non_blocking=True).float().div_(255)


class FIDEvaluator:
    """Scores `reconstruct` on the first `samples` images of a split: `fid` (when weights
    are available or an extractor is injected) and `swd` (offline, when enabled).

    `split`: "val" (data.x_val: the test split, or the held-out training images with
    DataConfig.holdout) or "test".

    `extractor`: any module mapping [0, 1] NCHW images to (N, D) features, with
    `extractor_id` naming it for the cache (tests use small fixed random networks)."""

    def __init__(
        self,
        cfg: FIDConfig,
        data: ImageData,
        device: str | torch.device = "cpu",
        extractor: nn.Module | None = None,
        extractor_id: str | None = None,
        split: str = "val",
    ):
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        self.cfg, self.data, self.device = cfg, data, torch.device(device)
        self.images = data.x_val if split == "val" else data.x_test
        self.split = "test" if self.images is data.x_test else "holdout"  # names the cache
        self.samples = min(cfg.samples, self.images.shape[0])  # the count actually used
        if self.samples < 2:
            raise UserError(f"FID needs at least 2 {self.split} images, dataset has {self.samples}")
        self.swd_samples = min(cfg.swd_samples, self.samples)
        self.weights_path = None
        if extractor is None and cfg.fid_mode != "off":
            must = cfg.fid_mode == "required" or not cfg.offline_metric
            self.weights_path = require_fid_weights(cfg) if must else check_fid_weights(cfg)
            if self.weights_path:
                extractor = InceptionFeatures(self.weights_path)
                extractor_id = extractor.extractor_id
        if extractor is not None and extractor_id is None:
            raise ValueError("an injected extractor needs an extractor_id (it keys the cache)")
        self.extractor = extractor.to(self.device).eval() if extractor is not None else None
        self.extractor_id = extractor_id
        self.metrics = ("fid",) * (self.extractor is not None) + ("swd",) * cfg.offline_metric
        self._ref: tuple[np.ndarray, np.ndarray] | None = None

    # -- reference statistics

    def cache_path(self) -> Path:
        key = self._cache_key()
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.data.name)[:40]
        stats_dir = Path(self.cfg.cache_dir).expanduser() / "fid_stats"
        return stats_dir / f"{name}-{self.split}-{self.samples}-{digest}.npz"

    def _cache_key(self) -> dict:
        return {
            "version": _CACHE_VERSION,
            "dataset": self.data.name,
            "fingerprint": self.data.fingerprint,
            "split": self.split,
            "samples": self.samples,
            "extractor": self.extractor_id,
        }

    def reference_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) of the real images of the split: from memory, else disk, else computed once
        per node under a file lock and written atomically."""
        if self._ref is None:
            path = self.cache_path()
            ensure_writable_dir(path.parent, "FID statistics cache directory")
            with FileLock(str(path) + ".lock"):
                self._ref = self._load(path)
                if self._ref is None:
                    self._ref = self._compute_reference()
                    self._save(path, *self._ref)
        return self._ref

    def _load(self, path: Path):
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                if json.loads(str(z["key"])) != self._cache_key():
                    return None
                return z["mu"], z["sigma"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None  # unreadable: recompute and overwrite

    def _save(self, path: Path, mu: np.ndarray, sigma: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, mu=mu, sigma=sigma, key=np.array(json.dumps(self._cache_key(), sort_keys=True)))
        atomic_write_bytes(path, buf.getvalue())

    @torch.inference_mode()
    def _compute_reference(self):
        stats = StreamingStats()
        for i in range(0, self.samples, self.cfg.batch_size):
            x = _u8_to_unit(self.images[i : min(i + self.cfg.batch_size, self.samples)], self.device)
            stats.update(self.extractor(x))
        return stats.mean(), stats.cov()

    # -- scoring

    @torch.inference_mode()
    def evaluate(self, reconstruct: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        """{"fid": ..., "swd": ...} for the metrics in `self.metrics`; lower is better."""
        ref = self.reference_stats() if "fid" in self.metrics else None
        stats = StreamingStats() if ref is not None else None
        acc = SWDAccumulator(self.cfg.swd_patches, self.cfg.seed) if "swd" in self.metrics else None
        bs = self.cfg.batch_size
        for i in range(0, self.samples, bs):
            x_u8 = self.images[i : min(i + bs, self.samples)]
            fake = (
                reconstruct(x_u8).to(self.device, torch.float32).clamp(0, 1)
            )  # not in place: may be the caller's tensor
            if fake.shape != x_u8.shape:
                raise ValueError(f"reconstruct returned {tuple(fake.shape)} for {tuple(x_u8.shape)}")
            if stats is not None:
                stats.update(self.extractor(fake))
            if acc is not None and i < self.swd_samples:
                keep = min(self.swd_samples - i, fake.shape[0])
                acc.update(_u8_to_unit(x_u8[:keep], self.device), fake[:keep])
        out = {}
        if stats is not None:
            out["fid"] = frechet_distance(stats.mean(), stats.cov(), *ref)
        if acc is not None:
            out["swd"] = acc.distance()
        return out


# ---------------------------------------------------------------- benchmark support


def random_weight_inception(seed: int = 0) -> InceptionFeatures:
    """pytorch-fid's InceptionV3 with random weights, loaded through the user path: same
    architecture and cost as the real one, for timing and tests where the download is
    impossible. Its FID values mean nothing."""
    import tempfile

    import torchvision

    torch.manual_seed(seed)
    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )  # the FID Inception's patched blocks keep torchvision's parameter names and shapes
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, FID_WEIGHTS_FILE)
        torch.save(net.state_dict(), path)
        return InceptionFeatures(path)


def benchmark_features(
    extractor: nn.Module,
    n_images: int,
    batch_size: int = 200,
    device: str | torch.device = "cpu",
    image_size: int = 32,
) -> dict:
    """Images/s of feature extraction + streaming stats on random uint8 images, and peak
    memory (CUDA: max allocated; CPU: process peak RSS)."""
    import resource
    import time

    device = torch.device(device)
    extractor = extractor.to(device).eval()
    gen = torch.Generator().manual_seed(0)
    stats = StreamingStats()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        warm = torch.randint(0, 256, (2, 3, image_size, image_size), dtype=torch.uint8)
        extractor(_u8_to_unit(warm, device))
        start = time.perf_counter()
        for i in range(0, n_images, batch_size):
            n = min(batch_size, n_images - i)
            x = torch.randint(0, 256, (n, 3, image_size, image_size), generator=gen, dtype=torch.uint8)
            stats.update(extractor(_u8_to_unit(x, device)))
        stats.cov()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {
        "images": n_images,
        "seconds": seconds,
        "images_per_s": n_images / seconds,
        "peak_mem_mb": peak_mb,
        "device": name,
    }
