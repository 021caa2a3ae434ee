"""The scorer of every trial: FID and KID (and the offline SWD) between the first images of a
split and their reconstructions, with the real images' statistics cached on disk.

Protocol (comparable to pytorch-fid): 2048-d pool3 features of pytorch-fid's `InceptionV3`
with the standard TF-ported weights, fed in-memory [0, 1] tensors that it resizes
bilinearly to 299x299 and maps to [-1, 1]; the first `samples` images against their
reconstructions; float64 statistics accumulated batch by batch (memory is D^2, not N*D);
the Fréchet distance in float64.

KID (Binkowski et al. 2018) from the same features: the unbiased MMD^2 with the cubic
polynomial kernel, mean and std over `kid_subsets` random subsets of `kid_subset_size`
images (`tune_vqvae.metrics.kid`, on the scorer's device; the StyleGAN2-ADA / clean-fid
convention). FID is
biased at a few thousand images (and needs more images than its 2,048 dimensions for a
full-rank covariance); KID is unbiased and comes with an error bar. KID needs the
features themselves, not only their moments, so the features of both sets are kept
(float32, N x 2048: 82 MB at 10,000 images).

The real images' statistics (mean, covariance and, for KID, their features) are cached on
disk per (dataset fingerprint, split, sample count, feature extractor incl. weights hash,
cache version), under a file lock so that the trials on a node compute them once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from torch import nn

from ..data import DEFAULT_CACHE, ImageData
from ..errors import UserError, atomic_write_bytes, ensure_writable_dir
from ..vocab import half_metric, images_metric
from .frechet import StreamingStats, frechet_distance
from .inception import InceptionFeatures, check_fid_weights, require_fid_weights
from .kid import kid
from .swd import SWDAccumulator

FID_MODES = ("auto", "required", "off")
_CACHE_VERSION = 2  # 2: the reference features are cached too (KID)


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
    kid_subsets: int = 100  # KID: mean and std over this many random subsets ...
    kid_subset_size: int = 1000  # ... of this many images each (clipped to `samples`)

    def __post_init__(self):
        for name in ("samples", "batch_size", "swd_samples", "swd_patches", "kid_subsets",
                     "kid_subset_size"):
            low = 2 if name in ("samples", "swd_samples", "kid_subset_size") else 1
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


def to_unit_range(x_u8: torch.Tensor, device) -> torch.Tensor:
    return x_u8.to(device, non_blocking=True).float().div_(255)


class FIDEvaluator:
    """Scores `reconstruct` on the first `samples` images of a split: `fid`, `kid` and
    `kid_std` (when weights are available or an extractor is injected) and `swd` (offline,
    when enabled).

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
        self.metrics = ("fid", "kid") * (self.extractor is not None) + ("swd",) * cfg.offline_metric
        self._ref: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # mu, sigma, feats

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
        return self._reference()[:2]

    def reference_features(self) -> np.ndarray:
        """The real images' features (N, D) float32, cached with mu and sigma (for KID)."""
        return self._reference()[2]

    def _reference(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
                return z["mu"], z["sigma"], z["feats"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None  # unreadable: recompute and overwrite

    def _save(self, path: Path, mu: np.ndarray, sigma: np.ndarray, feats: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, mu=mu, sigma=sigma, feats=feats,
                 key=np.array(json.dumps(self._cache_key(), sort_keys=True)))
        atomic_write_bytes(path, buf.getvalue())

    @torch.inference_mode()
    def _compute_reference(self):
        stats, feats = StreamingStats(), FeatureStore()
        for i in range(0, self.samples, self.cfg.batch_size):
            x = to_unit_range(self.images[i : min(i + self.cfg.batch_size, self.samples)], self.device)
            f = self.extractor(x)
            stats.update(f)
            feats.update(f)
        return stats.mean(), stats.cov(), feats.array()

    def kid(self, fake_feats: np.ndarray) -> tuple[float, float]:
        """(mean, std) KID of reconstructions' features against the cached real features;
        subsets drawn with the scorer's seed, so a trial's KID is repeatable."""
        return self.kid_of(fake_feats, self.reference_features())

    def kid_of(self, fake_feats: np.ndarray, real_feats: np.ndarray) -> tuple[float, float]:
        return kid(fake_feats, real_feats, subsets=self.cfg.kid_subsets,
                   subset_size=self.cfg.kid_subset_size, seed=self.cfg.seed, device=self.device)

    # -- scoring

    @torch.inference_mode()
    def evaluate(self, reconstruct: Callable[[torch.Tensor], torch.Tensor],
                 halves: bool = False) -> dict[str, float]:
        """{"fid", "kid", "kid_std", "swd"} for the metrics in `self.metrics` (kid with fid);
        lower is better. `halves`: also each metric on the two disjoint halves of its images
        (`fid_half1`, `fid_half2`, ...) and its image count (`fid_images`): the noise budget's
        inputs (tune_vqvae.stats.noise), asked for at a run's last evaluation."""
        halves_fid = halves and self.samples >= 4  # two halves of at least 2 images each
        ref = self.reference_stats() if "fid" in self.metrics else None
        stats = StreamingStats() if ref is not None else None
        feats = FeatureStore() if ref is not None else None
        acc = SWDAccumulator(self.cfg.swd_patches, self.cfg.seed) if "swd" in self.metrics else None
        # The halves draw their own patches and directions: those are part of the scoring noise.
        swd_halves = [SWDAccumulator(self.cfg.swd_patches, self.cfg.seed + k) for k in (1, 2)] \
            if acc is not None and halves and self.swd_samples >= 4 else None
        bs = self.cfg.batch_size
        for i in range(0, self.samples, bs):
            x_u8 = self.images[i : min(i + bs, self.samples)]
            fake = (
                reconstruct(x_u8).to(self.device, torch.float32).clamp(0, 1)
            )  # not in place: may be the caller's tensor
            if fake.shape != x_u8.shape:
                raise ValueError(f"reconstruct returned {tuple(fake.shape)} for {tuple(x_u8.shape)}")
            if stats is not None:
                f = self.extractor(fake)
                stats.update(f)
                feats.update(f)
            if acc is not None and i < self.swd_samples:
                keep = min(self.swd_samples - i, fake.shape[0])
                acc.update(to_unit_range(x_u8[:keep], self.device), fake[:keep])
                if swd_halves is not None:
                    _split_update(swd_halves, i, self.swd_samples // 2,
                                  to_unit_range(x_u8[:keep], self.device), fake[:keep])
        out = {}
        if stats is not None:
            out["fid"] = frechet_distance(stats.mean(), stats.cov(), *ref)
            fake_feats = feats.array()
            out["kid"], out["kid_std"] = self.kid(fake_feats)
            if halves_fid:
                out.update(self._inception_halves(fake_feats))
        if acc is not None:
            out["swd"] = acc.distance()
            if swd_halves is not None:
                out.update(_halves("swd", [h.distance() for h in swd_halves], self.swd_samples))
        return out

    def _inception_halves(self, fake_feats: np.ndarray) -> dict[str, float]:
        """FID and KID of the first and the second half of the images (real and reconstructed
        alike), from the features already computed."""
        real, h = self.reference_features(), self.samples // 2
        parts = [(fake_feats[:h], real[:h]), (fake_feats[h:], real[h:])]
        fid = [frechet_distance(*_moments(f), *_moments(r)) for f, r in parts]
        kid_ = [self.kid_of(f, r)[0] for f, r in parts]
        return {**_halves("fid", fid, self.samples), **_halves("kid", kid_, self.samples)}


def _moments(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stats = StreamingStats()
    stats.update(torch.from_numpy(feats))
    return stats.mean(), stats.cov()


def _halves(metric: str, scores: list[float], images: int) -> dict[str, float]:
    return {half_metric(metric, 1): scores[0], half_metric(metric, 2): scores[1],
            images_metric(metric): float(images)}


def _split_update(accs: list[SWDAccumulator], start: int, middle: int, real01, fake01) -> None:
    """Feed a batch of images start, start + 1, ... to the half each image belongs to."""
    cut = min(max(middle - start, 0), real01.shape[0])
    for acc, sl in ((accs[0], slice(None, cut)), (accs[1], slice(cut, None))):
        if real01[sl].shape[0]:
            acc.update(real01[sl], fake01[sl])


class FeatureStore:
    """Features of a set, batch by batch, on the host as float32 (KID needs them all)."""

    def __init__(self):
        self._parts: list[np.ndarray] = []

    def update(self, feats: torch.Tensor) -> None:
        self._parts.append(feats.detach().flatten(1).float().cpu().numpy())

    def array(self) -> np.ndarray:
        return np.concatenate(self._parts)
