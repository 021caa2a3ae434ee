"""The command line of one training run: `python -m tune_vqvae.train --loss gmsd --weight 0.5`.

Flags build a `TrainConfig` (defaults: the dataclasses'); a run directory holds config.json,
checkpoint.pt (every epoch, atomically), metrics.json and tb/ (TensorBoard).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from ..data import DataConfig, load_data
from ..errors import DivergedError, UserError, atomic_write_text, cli_entry, writable_dir_for_run
from ..losses import LOSSES, LossConfig, lpips
from ..model import ModelConfig
from ._trainer import COMPILE_MODES, TrainConfig, Trainer


def weights_arg(text: str) -> list[float]:
    """--weight 0.5 or, for a joint loss, 0.5,0.25 (one weight per part of its name)."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or comma-separated numbers "
                                         f"(0.5, or 0.5,0.25 for a joint loss)") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tune_vqvae.train",
                                description="One real VQ-VAE training run.")
    p.add_argument("--loss", default=LossConfig.name, help=f"one of {', '.join(LOSSES)}")
    p.add_argument("--weight", type=weights_arg, default=[LossConfig.weight], metavar="W[,W2]",
                   help="w in mse + w * loss; for a joint loss (--loss ssim+gmsd) one weight per "
                   "part, W1,W2: mse + W1*ssim + W2*gmsd (one W: the same for every part)")
    p.add_argument("--no-mse", action="store_true", help="train on the perceptual loss alone")
    p.add_argument("--lpips-weights", metavar="DIR", help="directory holding LPIPS's two weights "
                   "files (for --loss lpips offline; default: $TUNE_VQVAE_LPIPS_WEIGHTS, else "
                   "the torch hub cache)")
    p.add_argument("--data", default=DataConfig.source, help="builtin | cifar10 | FILE.npz")
    p.add_argument("--cache-dir", default=DataConfig.cache_dir)
    p.add_argument("--train-images", type=int, help="use only the first N training images")
    p.add_argument("--val-images", type=int, default=TrainConfig.val_images,
                   help="images of the validation split the val_* metrics use")
    p.add_argument("--holdout", type=int, default=DataConfig.holdout,
                   help="validate on the last N training images (not trained on) instead of test")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--hidden", type=int, default=ModelConfig.hidden)
    p.add_argument("--codebook-size", type=int, default=ModelConfig.codebook_size)
    p.add_argument("--beta", type=float, default=ModelConfig.beta)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--device", default=TrainConfig.device)
    p.add_argument("--no-amp", action="store_true", help="fp32 everywhere on CUDA")
    p.add_argument("--no-channels-last", action="store_true", help="NCHW activations on CUDA")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=TrainConfig.compile,
                   help="torch.compile forward and losses (default: on CUDA only)")
    p.add_argument("--compile-mode", default=TrainConfig.compile_mode, choices=COMPILE_MODES,
                   help="torch.compile mode (default: reduce-overhead, i.e. CUDA graphs, on CUDA)")
    p.add_argument("--no-fused-adam", action="store_true", help="Adam as a loop over parameters")
    p.add_argument("--out", help="run directory (default runs/train/<loss>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own settings (only --epochs and the "
                        "device and compile flags may change)")
    return p


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    if a.lpips_weights:  # before the loss checks its weights
        lpips.use_weights_dir(a.lpips_weights)
    return TrainConfig(
        model=ModelConfig(hidden=a.hidden, codebook_size=a.codebook_size, beta=a.beta),
        loss=LossConfig(name=a.loss, weight=a.weight[0] if len(a.weight) == 1 else 1.0,
                        weights=a.weight if len(a.weight) > 1 else None, with_mse=not a.no_mse),
        data=DataConfig(source=a.data, cache_dir=a.cache_dir, train_images=a.train_images,
                        holdout=a.holdout),
        epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed, device=a.device,
        val_images=a.val_images, amp=not a.no_amp, channels_last=not a.no_channels_last,
        compile=a.compile, compile_mode=a.compile_mode, fused_adam=not a.no_fused_adam,
    )


def _run_dir(a: argparse.Namespace, cfg: TrainConfig) -> Path:
    out = Path(a.out or f"runs/train/{cfg.loss.label.replace('*', 'x')}-{time.strftime('%Y%m%d-%H%M%S')}")
    has_run = (out / "checkpoint.pt").exists()
    if a.resume and not out.is_dir():
        raise UserError(f"--resume: {out} does not exist; give the --out of an earlier run")
    if a.resume and not has_run:
        raise UserError(f"--resume: {out} holds no checkpoint.pt; give the --out of an earlier run")
    if has_run and not a.resume:
        raise UserError(f"{out} already holds a run; add --resume to continue it or pick another --out")
    return out


# What a resumed run may change; everything else comes from the run's config.json.
RESUME_OVERRIDES = ("epochs", "device", "amp", "channels_last", "compile", "compile_mode")


# The saved settings each other flag sets (argparse dest -> dotted TrainConfig fields): a
# resumed run refuses a flag that would change one (tests check every flag is listed somewhere).
SAVED_BY_FLAG = {
    "loss": ("loss.name",), "weight": ("loss.weight", "loss.weights"), "no_mse": ("loss.with_mse",),
    "data": ("data.source",), "cache_dir": ("data.cache_dir",), "train_images": ("data.train_images",),
    "holdout": ("data.holdout",), "val_images": ("val_images",), "batch_size": ("batch_size",),
    "lr": ("lr",), "hidden": ("model.hidden",), "codebook_size": ("model.codebook_size",),
    "beta": ("model.beta",), "seed": ("seed",), "no_fused_adam": ("fused_adam",),
}


def _field(cfg: TrainConfig, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _refuse_changed_settings(a: argparse.Namespace, given: TrainConfig, saved: TrainConfig,
                             config_file: Path) -> None:
    """--resume with a flag that would change a saved setting: refused (exit 2, naming each),
    never silently ignored, as the search does."""
    parser = build_parser()
    changed = []
    for dest, fields in SAVED_BY_FLAG.items():
        if getattr(a, dest) == parser.get_default(dest):
            continue
        for f in fields:
            if _field(given, f) != _field(saved, f):
                flag = "--" + dest.replace("_", "-")
                changed.append(f"{flag} ({f} {_field(given, f)}, saved: {_field(saved, f)})")
                break
    if changed:
        raise UserError(f"--resume keeps the run's settings ({config_file}); {', '.join(changed)} "
                        f"would change them: drop the flag, or start a new run with another --out")


def _resumed_config(out: Path, given: TrainConfig, a: argparse.Namespace) -> TrainConfig:
    """The run's own config (model, loss, data, seed...), with only RESUME_OVERRIDES from the CLI."""
    try:
        saved = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"--resume: cannot read {out / 'config.json'} ({e}); is {out} a run dir?") from None
    _refuse_changed_settings(a, given, saved, out / "config.json")
    return dataclasses.replace(saved, **{k: getattr(given, k) for k in RESUME_OVERRIDES})


def _diverged_advice(cfg: TrainConfig) -> str:
    """What to change after a diverged run: the settings it ran with."""
    lr = f"--lr (now {cfg.lr:g})"
    if cfg.loss.name == "mse":
        return f"lower {lr}"
    if not cfg.loss.with_mse:
        return f"lower {lr}, or train with MSE (drop --no-mse)"
    return f"lower --weight (now {cfg.loss.weight:g}) or {lr}"


@cli_entry
def main(argv=None):
    a = build_parser().parse_args(argv)
    cfg = config_from_args(a)
    with writable_dir_for_run(_run_dir(a, cfg), "output directory") as out:
        return _train(a, cfg, out)


def _train(a: argparse.Namespace, cfg: TrainConfig, out: Path) -> int:
    if a.resume:
        cfg = _resumed_config(out, cfg, a)
    data = load_data(cfg.data)
    trainer = Trainer(cfg, data)
    if a.resume:  # before anything is written: a damaged checkpoint leaves the run as it was
        trainer.load_checkpoint(out / "checkpoint.pt")
    trainer.start_logging(out / "tb")
    atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))
    print(f"{cfg.loss.label}: {len(data.x_train)} train / {len(trainer.x_val)} val images of "
          f"{data.name} on {trainer.device}, epochs {trainer.epoch + 1}..{cfg.epochs}, run dir {out}")
    try:
        while trainer.epoch < cfg.epochs:
            m = trainer.train_epoch()
            trainer.save_checkpoint(out / "checkpoint.pt")
            atomic_write_text(out / "metrics.json", json.dumps(trainer.history, indent=1))
            print(f"epoch {m['epoch']:3d}  loss {m['train_loss']:.4f}  val mse {m['val_mse']:.4f}  "
                  f"psnr {m['val_psnr']:.2f}  ssim {m['val_ssim']:.4f}  perplexity "
                  f"{m['perplexity']:.1f}  {m['images_per_s']:.0f} img/s  step {m['step_ms']:.1f} ms "
                  f"(loss {m['recon_loss_ms']:.2f} ms)", flush=True)
    except DivergedError as e:
        raise UserError(f"{e}; {_diverged_advice(cfg)}") from None
    finally:
        trainer.close()
    return 0
