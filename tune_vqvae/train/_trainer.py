"""One real VQ-VAE training run: `TrainConfig` and the `Trainer` (its command line, `python -m
tune_vqvae.train --loss gmsd --weight 0.5`, is in _cli.py).

The loop follows airbench's shape: the dataset lives on the device, batches are index
gathers, and the host syncs once per epoch (to read the summed losses), not per step.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import statistics
import sys
import time
import types
import zipfile
from dataclasses import dataclass, field

import piqa
import torch
import torchvision

from ..data import DataConfig, DeviceBatches, ImageData, load_data, to_model_range
from ..errors import (
    DivergedError,
    UnsafeFileError,
    UserError,
    atomic_write_bytes,
    check_finite,
)
from ..losses import METRICS, LossConfig, ReconstructionLoss, find_metrics
from ..losses.builtin import SSIM_WINDOW
from ..model import DOWNSAMPLING, VQVAE, ModelConfig, codebook_usage

TRAIN_STATS = ("train_loss", "train_recon", "train_mse", "train_vq", "train_commit")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-4
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    val_images: int = 1000  # the first N images of the validation split (data.x_val)
    amp: bool = True  # bf16 autocast for convolutions (CUDA only)
    channels_last: bool = True  # NHWC activations: faster tensor-core convolutions (CUDA only)
    # torch.compile of the forward + losses. None: on CUDA only, in mode reduce-overhead (CUDA
    # graphs: one launch per step). Measured on an H200 (benchmarks/README.md): 3.7x the
    # images/s of eager for the full model, for a one-off compile of 10-20 s per trial; on a
    # CPU the compile costs more than it saves.
    compile: bool | None = None
    compile_mode: str | None = None  # None: reduce-overhead on CUDA, default on CPU
    fused_adam: bool = True  # one fused Adam kernel instead of a loop over parameters

    def __post_init__(self):
        for name in ("epochs", "batch_size", "val_images"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.compile_mode not in (None, *COMPILE_MODES):
            raise UserError(f"unknown --compile-mode {self.compile_mode!r}; use one of "
                            f"{', '.join(COMPILE_MODES)}")
        if self.compile_mode is not None and self.compile is False:
            raise UserError(f"--compile-mode {self.compile_mode} needs compiling; drop --no-compile")
        if not self.lr > 0:
            raise UserError(f"--lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["loss"].get("weights") is None:  # only a joint loss has weights: single runs unchanged
            del d["loss"]["weights"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        parts = {"model": ModelConfig, "loss": LossConfig, "data": DataConfig}
        for key, kind in parts.items():
            if isinstance(d.get(key), dict):
                d[key] = kind(**d[key])
        return cls(**d)


def min_image_size(loss: str) -> tuple[int, str]:
    """The smallest image side a run with `loss` takes, and what sets it: each metric of the
    loss (named first: on a tie the loss is the reason), the val_ssim every run reports, and
    the model's downsampling."""
    needs = [] if loss == "mse" else [(m.min_size, f"the smallest image {m.name} takes")
                                      for m in find_metrics(loss)]
    needs += [(METRICS["ssim"].min_size, "the SSIM behind val_ssim, which every run reports"),
              (DOWNSAMPLING, "the model's downsampling")]
    return max(needs, key=lambda need: need[0])


def check_image_size(loss: str, image_size: int, data_name: str) -> None:
    """UserError (one line: the size, the loss, the minimum) if the images are too small for
    a run with `loss`: checked before any training, never a crash inside a trial."""
    size, why = min_image_size(loss)
    if image_size < size:
        fit = -(-size // DOWNSAMPLING) * DOWNSAMPLING
        raise UserError(f"the images of {data_name} are {image_size}x{image_size}, too small for "
                        f"--loss {loss}: it needs at least {size}x{size} ({why}); use images of "
                        f"{fit}x{fit} or larger (a multiple of {DOWNSAMPLING})")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for, but no CUDA GPU is visible; use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) visible")
    return device


def compile_mode(cfg: TrainConfig, device: torch.device) -> str | None:
    """The torch.compile mode a run uses on `device`, or None for eager."""
    if cfg.compile is False or (cfg.compile is None and device.type != "cuda"):
        return None
    return cfg.compile_mode or ("reduce-overhead" if device.type == "cuda" else "default")


def compile_own(method, **compile_kwargs):
    """torch.compile of a bound method, independent of every other compiled instance in the
    process. Dynamo keeps a function's graphs on its code object, at most `recompile_limit` (8),
    and every Trainer's `_forward_losses` is one code object whose guards match that trainer's
    objects by id: from the 9th trainer in a process on, steps silently ran eager (the H200
    check's "gmsd, haarpsi, ms_gmsd lose CUDA graphs" were its 9th-11th trainers). So the method
    runs through a copy of its code object. Static (dynamic=False): dynamo's automatic-dynamic
    state is kept per source line, shared by the copies, so a trainer after one with another
    batch size or float (a loss's `best`) would compile symbolic inputs, for which inductor
    skips CUDA graphs; our shapes are fixed by construction."""
    fn = method.__func__
    own = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__,
                             fn.__closure__)
    return torch.compile(types.MethodType(own, method.__self__), dynamic=False, **compile_kwargs)


class Trainer:
    def __init__(self, cfg: TrainConfig, data: ImageData | None = None, log_dir=None):
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.data = data if data is not None else load_data(cfg.data)
        check_image_size(cfg.loss.name, self.data.image_size, self.data.name)
        torch.manual_seed(cfg.seed)
        self.model = self._build_model().to(self.device)
        on_cuda = self.device.type == "cuda"
        if cfg.channels_last and on_cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.loss_fn = self._build_loss().to(self.device)
        # fused=None, not False: False would also turn off the multi-tensor (foreach) default
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=cfg.fused_adam or None)
        self.batches = DeviceBatches(self.data.x_train, cfg.batch_size, self.device, cfg.seed)
        self.x_val = self.data.x_val[: cfg.val_images].to(self.device)
        self.autocast = torch.autocast(
            "cuda", dtype=torch.bfloat16, enabled=cfg.amp and on_cuda
        )
        self.compile_mode = compile_mode(cfg, self.device)
        self._losses = (compile_own(self._forward_losses, mode=self.compile_mode) if self.compile_mode
                        else self._forward_losses)
        self.ssim = piqa.SSIM(window_size=SSIM_WINDOW).to(self.device)
        self.epoch = 0  # completed epochs
        self.history: list[dict] = []
        self.writer = None
        if log_dir is not None:
            self.start_logging(log_dir)

    def start_logging(self, log_dir) -> None:
        """TensorBoard events from now on (opened late by a resume, which must fail first)."""
        from torch.utils.tensorboard import SummaryWriter  # only runs that log need it

        self.writer = SummaryWriter(str(log_dir))

    def _build_model(self) -> VQVAE:
        return VQVAE(self.cfg.model)

    def _build_loss(self) -> ReconstructionLoss:
        return ReconstructionLoss(self.cfg.loss, self.data.image_size)

    # --- training ------------------------------------------------------------------------

    def _forward_losses(self, x: torch.Tensor) -> torch.Tensor:
        """TRAIN_STATS of batch x as one tensor; element 0 is the loss to minimise."""
        with self.autocast:
            x_tilde, z_e, z_q, _ = self.model(x)
        recon, mse, _ = self.loss_fn(x_tilde, x)
        vq, commit = self.model.vq_losses(z_e, z_q)
        loss = recon + vq + self.cfg.model.beta * commit
        return torch.stack([loss, recon, mse, vq, commit])

    def _minimised(self, stats: torch.Tensor) -> torch.Tensor:
        """The scalar the optimiser minimises, from `_forward_losses`' stats."""
        return stats[0]

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        """One optimiser step; returns the detached TRAIN_STATS as one tensor (no host sync)."""
        if self.compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # CUDA graphs may reuse last step's buffers
        stats = self._losses(x)
        self.opt.zero_grad(set_to_none=True)
        self._minimised(stats).backward()
        self.opt.step()
        return stats.detach()

    def _train_steps(self) -> tuple[torch.Tensor, float, torch.Tensor]:
        """One epoch of steps: (mean TRAIN_STATS on the host, seconds, last batch)."""
        self.model.train()
        sums, steps, x = 0, 0, None
        self._sync()
        start = last_print = time.perf_counter()
        for x in self.batches.epoch(self.epoch):
            sums = sums + self._step(x)
            steps += 1
            if time.perf_counter() - last_print > 30:  # long CPU epochs show progress
                last_print = time.perf_counter()
                print(f"  epoch {self.epoch + 1}: step {steps}/{len(self.batches)}", file=sys.stderr)
        self._sync()
        epoch_s = time.perf_counter() - start
        means = (sums / steps).cpu()
        for name, value in zip(TRAIN_STATS, means):
            if not torch.isfinite(value).all():
                raise DivergedError(self.epoch + 1, name)
        self.epoch += 1
        return means, epoch_s, x

    def train_epoch(self) -> dict:
        means, epoch_s, x = self._train_steps()
        steps = len(self.batches)
        metrics = {"epoch": self.epoch, **dict(zip(TRAIN_STATS, means.tolist()))}
        metrics.update(self.evaluate())
        metrics.update(
            images_per_s=steps * self.batches.batch_size / epoch_s,
            step_ms=1000 * epoch_s / steps,
            recon_loss_ms=self.time_recon_loss(x),
            epoch_s=epoch_s,
        )
        check_finite(metrics, self.epoch)  # e.g. a loss that is NaN on the validation images
        self.history.append(metrics)
        self._log(metrics)
        return metrics

    def time_recon_loss(self, x: torch.Tensor, repeats: int = 5) -> float:
        """Median ms of the reconstruction loss's forward + backward alone, on batch x.

        Timed outside the epoch so it does not slow training; step_ms minus this is the
        rest of the step, which is how the perceptual loss's compute overhead is measured.
        """
        self.model.eval()  # a train-mode forward would move the BatchNorm running stats
        with torch.no_grad(), self.autocast:
            x_tilde = self.model(x)[0]
        self.model.train()
        times = []
        for _ in range(repeats):
            xt = x_tilde.detach().clone().requires_grad_(True)
            self._sync()
            t0 = time.perf_counter()
            self.loss_fn(xt, x)[0].backward()
            self._sync()
            times.append(1000 * (time.perf_counter() - t0))
        return statistics.median(times)

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # --- evaluation ----------------------------------------------------------------------

    @torch.no_grad()
    def reconstruct(self, x_u8: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Reconstructions in [0, 1] (float32, on the device) of uint8 images, eval mode."""
        was_training = self.model.training
        self.model.eval()
        out = []
        for i in range(0, len(x_u8), batch_size):
            with self.autocast:
                x_tilde = self.model(to_model_range(x_u8[i:i + batch_size].to(self.device)))[0]
            out.append((x_tilde.float() + 1) / 2)
        self.model.train(was_training)
        return torch.cat(out).clamp_(0, 1)

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor | None = None) -> dict:
        """Held-out MSE (model space, like the training term), PSNR, SSIM, own loss, codes,
        on uint8 `images` (default: the first val_images of the validation split)."""
        images = self.x_val if images is None else images.to(self.device)
        self.model.eval()
        sums = torch.zeros(4, device=self.device)
        codes = []
        for i in range(0, len(images), 500):
            x = to_model_range(images[i:i + 500])
            with self.autocast:
                x_tilde, _, _, c = self.model(x)
            recon, mse, _ = self.loss_fn(x_tilde, x)
            a, b = (x_tilde.float() + 1) / 2, (x + 1) / 2
            psnr = piqa.psnr.psnr(a, b).mean()
            sums += len(x) * torch.stack([mse, psnr, self.ssim(a, b), recon])
            codes.append(c)
        self.model.train()
        mse, psnr, ssim, recon = (sums / len(images)).tolist()
        perplexity, used = codebook_usage(torch.cat(codes), self.cfg.model.codebook_size)
        return dict(val_mse=mse, val_psnr=psnr, val_ssim=ssim, val_recon=recon,
                    perplexity=perplexity.item(), codes_used=used.item())

    # --- logging and checkpoints ---------------------------------------------------------

    def _log(self, metrics: dict):
        if self.writer is None:
            return
        for key, value in metrics.items():
            if key != "epoch":
                group = "val" if key.startswith("val_") else "train" if key.startswith("train_") else "run"
                self.writer.add_scalar(f"{group}/{key}", value, self.epoch)
        self.writer.add_image("reconstructions", self.reconstruction_grid(), self.epoch)
        self.writer.flush()

    def reconstruction_grid(self, n: int = 16) -> torch.Tensor:
        """Originals (top row) above their reconstructions (bottom row), as one CHW image."""
        x = self.x_val[:n]
        both = torch.cat([x.float().div(255), self.reconstruct(x)]).cpu()
        return torchvision.utils.make_grid(both, nrow=len(x), padding=1)

    def state_dict(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "history": self.history,
        }

    def load_state_dict(self, state: dict):
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        # The checkpoint's optimizer settings win (torch restores them, and its state
        # tensors are laid out for them): record the Adam implementation actually used.
        self.cfg.fused_adam = bool(self.opt.param_groups[0].get("fused"))
        self.epoch = state["epoch"]
        self.history = list(state["history"])

    def save_checkpoint(self, path, durable: bool = True):
        """Durable: atomic and on disk (fsync), so a crash mid-save leaves the previous
        checkpoint intact. A trial writes into a private directory that Ray then copies to
        storage, where neither is needed and the fsync costs more than the write."""
        if not durable:
            torch.save(self.state_dict(), path)
            return
        buf = io.BytesIO()
        torch.save(self.state_dict(), buf)
        atomic_write_bytes(path, buf.getvalue())

    def load_checkpoint(self, path):
        state = load_state(path, map_location=self.device)
        try:
            self.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise UserError(f"cannot resume from checkpoint {path} ({type(e).__name__}); it is "
                            f"from another model configuration") from None

    def close(self):
        if self.writer is not None:
            self.writer.close()


def load_state(path, map_location="cpu") -> dict:
    """A Trainer state saved by `save_checkpoint`: tensors and plain values only.

    `weights_only=True` is torch's safe unpickler: a checkpoint is data, and search
    directories are shared (NFS, buckets, colleagues' results), so a file holding any other
    object is refused rather than given the chance to run code while it loads."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e).lower():  # torch names the class or function it would call
            raise UnsafeFileError(f"refusing checkpoint {path}: it holds objects other than tensors and "
                            f"plain values, and loading them could run code; use a checkpoint "
                            f"written by tune_vqvae") from None
        raise UserError(f"cannot read checkpoint {path} (damaged: {type(e).__name__})") from None
    except (OSError, RuntimeError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read checkpoint {path} ({type(e).__name__}); it is damaged or "
                        f"not a tune_vqvae checkpoint") from None
    if not isinstance(state, dict) or not {"config", "model"} <= state.keys():
        raise UserError(f"checkpoint {path} is not a tune_vqvae trainer state (no config/model)")
    return state
