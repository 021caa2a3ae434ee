"""Image datasets held as uint8 tensors, and shuffled batches drawn on the training device.

Sources (`DataConfig.source`):
  builtin   offline default: 32x32 crops of the colour photographs scikit-image ships,
            at 1x, 2x and 3x scale (area-downsampled), deterministic for a seed. Train crops
            come from the left 3/4 of each photo, test crops from the right 1/4.
  cifar10   torchvision's CIFAR-10, downloaded once into the cache dir under a file lock.
  PATH.npz  any dataset in the keras layout: x_train, x_test as (N, H, W, 3) uint8.

Splits: train, test, and the validation split `x_val` that held-out metrics and the
search's objective use. By default x_val is the test split (the paper's protocol: FID on
test images). With `holdout=N` it is the last N training images instead, so a search
selects its best weight on images it never reports, and scores the winner on test.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from .errors import UserError, missing_dirs, remove_empty_dirs
from .model import DOWNSAMPLING

DEFAULT_CACHE = os.environ.get("TUNE_VQVAE_CACHE", "~/.cache/tune_vqvae")


@dataclass
class DataConfig:
    source: str = "builtin"  # builtin | cifar10 | path to .npz
    cache_dir: str = DEFAULT_CACHE
    train_images: int | None = None  # keep only the first N (None: all)
    test_images: int | None = None
    builtin_train: int = 10_000  # size of the built-in dataset
    builtin_test: int = 2_000
    seed: int = 0  # of the built-in crops
    holdout: int = 0  # > 0: the last N training images are the validation split (not trained on)

    def __post_init__(self):
        for name in ("train_images", "test_images"):
            n = getattr(self, name)
            if n is not None and n < 1:
                raise UserError(f"{name} must be >= 1, got {n}")
        if self.holdout < 0:
            raise UserError(f"--holdout must be >= 0, got {self.holdout}")


@dataclass
class ImageData:
    x_train: torch.Tensor  # (N, 3, H, W) uint8
    x_test: torch.Tensor
    name: str
    fingerprint: str  # sha256 of the pixels: keys caches (FID reference statistics)
    x_holdout: torch.Tensor | None = None  # held-out training images (DataConfig.holdout)

    @property
    def image_size(self) -> int:
        return self.x_train.shape[-1]

    @property
    def x_val(self) -> torch.Tensor:
        """The validation split: the held-out training images, else the test split."""
        return self.x_test if self.x_holdout is None else self.x_holdout


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()[:16]


def _to_image_data(x_train: np.ndarray, x_test: np.ndarray, name: str, cfg: DataConfig):
    as_nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    x_test, held = x_test[: cfg.test_images], []
    if cfg.holdout:
        # Off the end of the full training set first, so it does not depend on
        # --train-images: runs with different training sizes are selected on the same images.
        if cfg.holdout >= len(x_train):
            raise UserError(f"--holdout {cfg.holdout} leaves no training images ({name} has "
                            f"{len(x_train)}); hold out fewer")
        x_train, held = x_train[: -cfg.holdout], [x_train[-cfg.holdout:]]
    x_train = x_train[: cfg.train_images]
    return ImageData(as_nchw(x_train), as_nchw(x_test), name, _fingerprint(x_train, x_test, *held),
                     as_nchw(held[0]) if held else None)


def load_data(cfg: DataConfig) -> ImageData:
    if cfg.source == "builtin":
        x_train, x_test = builtin_images(cfg.builtin_train, cfg.builtin_test, cfg.seed)
        name = f"builtin-seed{cfg.seed}"
    elif cfg.source == "cifar10":
        x_train, x_test = _cifar10(Path(cfg.cache_dir).expanduser())
        name = "cifar10"
    elif cfg.source.endswith(".npz"):
        x_train, x_test = _npz(Path(cfg.source).expanduser())
        name = Path(cfg.source).stem
    else:
        raise UserError(
            f"unknown data source {cfg.source!r}; use builtin, cifar10 or a path to an .npz file"
        )
    return _to_image_data(x_train, x_test, name, cfg)


# --- built-in photographs --------------------------------------------------------------

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "motorcycle")
CROP_SCALES = (1, 2, 3)


def _photos() -> list[np.ndarray]:
    import skimage.data  # imported here: only the built-in dataset needs it

    photos = []
    for name in PHOTOS:
        img = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
        photos.append(img[..., :3])
    return photos


def _random_crops(photo: np.ndarray, n: int, rng: np.random.Generator, size: int = 32):
    """n crops of size*s pixels at random scales s, area-downsampled to size x size."""
    out = np.empty((n, size, size, 3), np.uint8)
    scales = rng.choice(CROP_SCALES, size=n)
    for i, s in enumerate(scales):
        side = size * s
        y = rng.integers(0, photo.shape[0] - side + 1)
        x = rng.integers(0, photo.shape[1] - side + 1)
        crop = photo[y:y + side, x:x + side].astype(np.float32)
        out[i] = crop.reshape(size, s, size, s, 3).mean((1, 3)).round().astype(np.uint8)
    return out


def builtin_images(n_train: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Crops of scikit-image's photographs: train from the left 3/4, test from the right 1/4."""
    rng = np.random.default_rng(seed)
    photos = _photos()
    train, test = [], []
    for i, photo in enumerate(photos):
        split = photo.shape[1] * 3 // 4
        per_train = n_train // len(photos) + (i < n_train % len(photos))
        per_test = n_test // len(photos) + (i < n_test % len(photos))
        train.append(_random_crops(photo[:, :split], per_train, rng))
        test.append(_random_crops(photo[:, split:], per_test, rng))
    x_train, x_test = np.concatenate(train), np.concatenate(test)
    # Interleave photos so that "the first N images" is a mix of all of them.
    return x_train[rng.permutation(len(x_train))], x_test[rng.permutation(len(x_test))]


# --- CIFAR-10 and .npz ------------------------------------------------------------------

CIFAR10_LOCK = "cifar10.lock"


def _cifar10(cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import CIFAR10

    created = missing_dirs(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # One process downloads and extracts; the others wait, then find it complete.
        with FileLock(str(cache_dir / CIFAR10_LOCK)):
            train = CIFAR10(str(cache_dir), train=True, download=True)
            test = CIFAR10(str(cache_dir), train=False, download=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; so is an unwritable cache
        remove_empty_dirs(created, leftovers=(CIFAR10_LOCK,))  # no empty cache dir left behind
        raise UserError(
            f"could not download CIFAR-10 into {cache_dir} ({e}); without a network, put "
            f"cifar-10-python.tar.gz there (or pick a writable --cache-dir), or use --data builtin "
            f"or --data FILE.npz"
        ) from None
    return train.data, test.data


NPZ_MAGIC = b"PK\x03\x04"  # a zip archive's local file header


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise UserError(f"data file {str(path)!r} does not exist; check the --data path")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise UserError(f"cannot read data file {str(path)!r} ({e.strerror})") from None
    if head != NPZ_MAGIC:  # else numpy takes any other file for pickled data
        raise UserError(f"{path} is not an .npz file (an .npz is a zip archive, made by numpy.savez; "
                        f"this file starts with {head!r}); re-create it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"x_train", "x_test"} - set(f.files)
            if missing:
                raise UserError(
                    f"{path} lacks {', '.join(sorted(missing))}; an .npz needs x_train and "
                    f"x_test as (N, H, W, 3) uint8 arrays (the keras layout)"
                )
            x_train, x_test = f["x_train"], f["x_test"]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise UserError(f"{path} is not a readable .npz file ({e}); re-create or re-download it") from None
    for key, a in (("x_train", x_train), ("x_test", x_test)):
        if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8 or a.shape[1] != a.shape[2]:
            raise UserError(
                f"{path}: {key} has shape {a.shape} and dtype {a.dtype}; expected (N, H, H, 3) "
                f"uint8 with H a multiple of {DOWNSAMPLING}"
            )
        if a.shape[1] % DOWNSAMPLING or len(a) == 0:
            raise UserError(f"{path}: {key} has shape {a.shape}; it needs N >= 1 images of a side "
                            f"that is a multiple of {DOWNSAMPLING} (e.g. 32x32)")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserError(f"{path}: x_train images are {x_train.shape[1:]}, x_test {x_test.shape[1:]}")
    return x_train, x_test


# --- batches on the device --------------------------------------------------------------

def to_model_range(x_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the reference's Normalize(0.5, 0.5)."""
    return x_u8.float().div_(127.5).sub_(1.0)


class DeviceBatches:
    """The whole training set as a uint8 tensor on the device; shuffled batches by index.

    No DataLoader, no per-image Python: one randperm per epoch, one gather per step. The
    order depends only on (seed, epoch), so a resumed run sees the same batches.
    """

    def __init__(self, x_u8: torch.Tensor, batch_size: int, device: torch.device, seed: int):
        self.x = x_u8.to(device, non_blocking=True)
        self.batch_size = min(batch_size, len(self.x))
        self.device = device
        self.seed = seed

    def __len__(self) -> int:
        return len(self.x) // self.batch_size  # drop the ragged last batch: fixed shapes

    def epoch(self, epoch: int):
        g = torch.Generator(device=self.device)
        g.manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.x), generator=g, device=self.device)
        for i in range(len(self)):
            yield to_model_range(self.x[order[i * self.batch_size:(i + 1) * self.batch_size]])
