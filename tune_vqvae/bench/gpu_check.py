"""The GPU check: `python -m tune_vqvae.bench.gpu_check [--quick] [--out-dir DIR]`.

One command for the first minutes on a lent GPU: is every CUDA path correct, and how
fast is it? Correctness first (each fast path against the plain fp32 path, every loss
under autocast, the grouped model against its members on cuDNN, Inception on CUDA
against CPU), then the benchmarks of `tune_vqvae.bench`. Each step runs under a time cap
and the JSON is rewritten after every step, so a run killed at its limit keeps what it
measured. `--quick` runs the same steps with a small model on the CPU; a test runs it so
the script cannot rot between lendings. Needs no ray.

Tolerances (why these numbers):
- First step of training, same init and batch: bf16 keeps 8 mantissa bits (relative
  rounding 2^-9 per operation), accumulated over ~20 layers: within 2%. fp32 paths differ
  by summation order and TF32 convolutions (10 mantissa bits, cuDNN's default): 0.5%.
- After hundreds of steps the runs cannot agree step by step: the codebook's argmin flips
  on rounding and the trajectories separate. What must agree is where training gets: the
  mean loss of the last fifth of the steps within 5% of the fp32 path's (the loss falls by
  far more than that over the run, so a broken path, e.g. a wrong gradient, misses it).
- Grouped model vs members in true fp32 (TF32 off): 1e-4 relative, as on the CPU.
- Inception features CUDA vs CPU, with the production TF32 convolutions: 1% relative L2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..data import DataConfig, load_data, to_model_range
from ..errors import UserError, atomic_write_text, cli_entry
from ..losses import LOSSES, PERCEPTUAL_LOSSES, LossConfig, lpips
from ..model import VQVAE
from ..train import TrainConfig, Trainer, fuse_state_dicts, pick_device
from . import compute, timing, trial

FIRST_STEP_TOL = {"bf16": 0.02, "fp32": 0.005}
TAIL_TOL = 0.05
FUSED_TOL = 1e-4
INCEPTION_TOL = 0.01

# The overhead step's timed repeats (the other benchmarks keep BenchConfig's 3). Its ratios are
# judged against 1.10x MSE by a paired t interval (timing.paired_ratio): its half-width is
# t * sd / sqrt(n), 2.48 sd at 3 repeats, 0.92 sd at 7, 0.55 sd at 15. Cheap: a repeat is 8
# losses x 20 steps, ~0.4 s on an H200 (0.04-0.05 s a loss); the step's time is its 8
# compilations and warm-ups (95-109 s measured with 3 repeats, of its 180 s cap), so 15 cost
# ~6 s. With MSE's repeats spreading +-6%, 15 resolve a ratio of 1.15 against the 1.10 bar.
# The CPU test runs 3.
OVERHEAD_REPEATS = {"quick": 3, "full": 15}

PLAIN = dict(amp=False, channels_last=False, fused_adam=False, compile=False)
CHECKS = ("losses_under_autocast", "fused_model", "inception_cuda_vs_cpu")
FAST_PATHS = {  # each against PLAIN; bf16 paths get the bf16 first-step tolerance
    "bf16 autocast": dict(amp=True),
    "channels_last": dict(channels_last=True),
    "fused Adam": dict(fused_adam=True),
    "compile": dict(compile=True, compile_mode="default"),
    "compile + CUDA graphs": dict(compile=True, compile_mode="reduce-overhead"),
    "all": dict(amp=True, channels_last=True, fused_adam=True, compile=True,
                compile_mode="reduce-overhead"),
}


class StepTimeout(BaseException):
    """Not an Exception: the benchmarks' own error rows must not swallow the cap."""


@contextlib.contextmanager
def time_cap(seconds: float):
    """Raise StepTimeout in the main thread after `seconds` (checked between Python ops)."""
    def expire(*_):
        raise StepTimeout(f"step passed its {seconds:.0f} s cap")
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --- correctness -------------------------------------------------------------------------

def loss_curve(cfg: TrainConfig, data, steps: int) -> list[float]:
    """Training loss of each of `steps` optimiser steps (one host sync at the end)."""
    trainer = Trainer(cfg, data)
    losses, epoch = [], 0
    while len(losses) < steps:
        for x in trainer.batches.epoch(epoch):
            losses.append(trainer._step(x)[0].clone())  # clone: CUDA graphs reuse buffers
            if len(losses) == steps:
                break
        epoch += 1
    return torch.stack(losses).float().cpu().tolist()


def compare_curves(curve: list[float], ref: list[float], bf16: bool) -> dict:
    tail = max(1, len(ref) // 5)
    first = abs(curve[0] - ref[0]) / abs(ref[0])
    tail_diff = abs(sum(curve[-tail:]) - sum(ref[-tail:])) / abs(sum(ref[-tail:]))
    finite = all(v == v and abs(v) != float("inf") for v in curve)
    first_tol = FIRST_STEP_TOL["bf16" if bf16 else "fp32"]
    return {"first_step_rel_diff": first, "first_step_tol": first_tol,
            "tail_mean_rel_diff": tail_diff, "tail_tol": TAIL_TOL,
            "first_loss": curve[0], "last_loss": curve[-1],
            "ok": finite and first <= first_tol and tail_diff <= TAIL_TOL}


class FastPaths:
    """Each fast path's loss curve against the plain fp32 path, same seed and batches.

    The reference curve is trained once, then every path is its own capped step. A second
    fp32 run with another seed is the yardstick: how far apart two equally valid runs end.
    """

    def __init__(self, base: TrainConfig, data, steps: int):
        self.base, self.data, self.steps = base, data, steps
        self.ref: list[float] | None = None

    def reference(self) -> dict:
        self.ref = loss_curve(replace(self.base, **PLAIN), self.data, self.steps)
        other_seed = compare_curves(loss_curve(replace(self.base, **PLAIN, seed=1), self.data, self.steps),
                                    self.ref, bf16=False)
        other_seed.pop("ok")  # a yardstick for the tolerance, not a check
        return {"fp32": {"first_loss": self.ref[0], "last_loss": self.ref[-1], "steps": self.steps},
                "fp32, seed 1 (yardstick)": other_seed}

    def check(self, switches: dict) -> dict:
        if self.ref is None:
            raise RuntimeError("the fp32 reference curve failed; nothing to compare with")
        curve = loss_curve(replace(self.base, **{**PLAIN, **switches}), self.data, self.steps)
        return compare_curves(curve, self.ref, bf16=switches.get("amp", False))


def check_losses_under_autocast(base: TrainConfig, data) -> dict:
    """Every loss, with and without MSE, under bf16 autocast: finite value and gradients."""
    x = next(iter(Trainer(base, data).batches.epoch(0)))
    rows = {}
    for name in LOSSES:
        for with_mse in (True, False) if name in PERCEPTUAL_LOSSES else (True,):
            loss = LossConfig(name, 0.5, with_mse)
            rows[loss.label] = loss_gradients(replace(base, loss=loss, amp=True), data, x)
    return rows


def loss_gradients(cfg: TrainConfig, data, x: torch.Tensor) -> dict:
    trainer = Trainer(cfg, data)
    stats = trainer._losses(x)
    stats[0].backward()
    grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
    finite_grads = all(torch.isfinite(g).all() for g in grads)
    return {"loss": stats[0].item(), "finite_loss": bool(torch.isfinite(stats).all()),
            "finite_grads": bool(finite_grads), "grads": len(grads),
            "ok": bool(torch.isfinite(stats).all()) and finite_grads and len(grads) > 0}


@contextlib.contextmanager
def true_fp32():
    """TF32 off for convolutions and matmuls (both default to TF32 on CUDA)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def check_fused_model(base: TrainConfig, data, groups: int = 3) -> dict:
    """VQVAE(groups=G) with its members' weights computes what each member computes."""
    device = pick_device(base.device)
    members = []
    for seed in range(groups):
        torch.manual_seed(seed)
        members.append(VQVAE(base.model).to(device))
    fused = VQVAE(base.model, groups=groups).to(device)
    fused.load_state_dict(fuse_state_dicts([m.state_dict() for m in members]))
    x = to_model_range(data.x_train[:64].to(device))
    worst, codes_equal = 0.0, []
    with torch.no_grad(), true_fp32():
        x_tilde, _, _, codes = fused(x)
        c = x_tilde.shape[1] // groups
        for g, m in enumerate(members):
            m_tilde, _, _, m_codes = m(x)
            worst = max(worst, rel_l2(x_tilde[:, g * c:(g + 1) * c], m_tilde))
            codes_equal.append((codes[:, g] == m_codes).float().mean().item())
    return {"groups": groups, "reconstruction_rel_l2": worst, "tol": FUSED_TOL,
            "codes_equal_fraction": min(codes_equal), "ok": worst <= FUSED_TOL and min(codes_equal) >= 0.99}


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def check_inception(device: torch.device, data, images: int) -> dict:
    """Inception pool3 features of the same images on the device and on the CPU."""
    extractor = compute.random_weight_inception()
    x = data.x_test[:images].float() / 255
    with torch.inference_mode():
        cpu = extractor(x)
        dev = extractor.to(device)(x.to(device)).cpu()
    diff = rel_l2(dev, cpu)
    return {"images": images, "device": str(device), "features_rel_l2": diff,
            "mean_feature_rel_l2": rel_l2(dev.mean(0), cpu.mean(0)), "tol": INCEPTION_TOL,
            "ok": diff <= INCEPTION_TOL}


# --- the run -----------------------------------------------------------------------------

def capped(cap: float, run) -> dict:
    """run() under a time cap; a failure or timeout becomes an error row, never an abort."""
    try:
        with time_cap(cap):
            return run()
    except UserError:
        raise
    except (Exception, StepTimeout) as e:  # noqa: BLE001 - recorded in the JSON and printed, not hidden
        print(f"  failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return {"error": f"{type(e).__name__}: {str(e)[:500]}", "ok": False}


def plan(a, base: TrainConfig, data, bc: timing.BenchConfig, device: torch.device) -> dict:
    """Step name -> (cap in seconds, thunk), in the order of what matters most."""
    fast = FastPaths(base, data, a.steps or (6 if a.quick else 200))
    steps = {"losses_under_autocast": (60, lambda: check_losses_under_autocast(base, data)),
             "fast_path_reference": (60, fast.reference)}
    steps.update({f"fast_path {name}": (75, lambda switches=switches: fast.check(switches))
                  for name, switches in FAST_PATHS.items()})
    compiled = a.compile if a.compile is not None else device.type == "cuda"
    compiles = 3 if compiled else 1  # every trainer compiles once: longer caps
    steps.update({
        "fused_model": (30, lambda: check_fused_model(base, data)),
        "inception_cuda_vs_cpu": (45, lambda: check_inception(device, data, 8 if a.quick else 64)),
        "train": (150, lambda: compute.bench_train(bc, data)),
        "overhead": (60 * compiles, lambda: compute.bench_overhead(
            replace(bc, repeats=OVERHEAD_REPEATS["quick" if a.quick else "full"]), data)),
        "fid": (45, lambda: compute.bench_fid(bc, data)),
        "packing": (90 * compiles, lambda: compute.bench_packing(bc)),
        "fused": (60 * compiles,
                  lambda: compute.bench_fused(bc, data, groups=(2,) if a.quick else (2, 4, 8))),
        "profile": (30 * compiles, lambda: trial.profile_step(base, data, 5 if a.quick else 20)),
        "batch_sweep": (40 * compiles, lambda: trial.batch_sweep(
            base, trial.sized_data(data, 50_000), (32, 64) if a.quick else (128, 256, 512, 1024),
            steps=2 if a.quick else 20)),
        "epoch_phases": (30 * compiles, lambda: trial.epoch_phases(base, data)),
        "reused_worker": (60 * compiles, lambda: trial.reused_worker(
            base, trial.sized_data(data, 512 if a.quick else 50_000), 2 if a.quick else 20)),
        "trial_cost": (120 * compiles, lambda: trial.trial_cost(data, trial_args(a, base), *(
            (512, 2) if a.quick else (50_000, 20)))),  # a CIFAR-sized 20-epoch trial on a GPU
    })
    return steps


def trial_args(a, base: TrainConfig) -> list[str]:
    """The train CLI's flags for the model and device this check times."""
    m = base.model
    return ["--device", a.device, "--hidden", str(m.hidden), "--codebook-size", str(m.codebook_size),
            "--batch-size", str(base.batch_size)] + ([] if a.compile is None else
                                                     ["--compile" if a.compile else "--no-compile"])


def verdicts(results: dict) -> dict:
    """Step -> pass | FAIL | error, over the correctness steps' "ok" fields."""
    out = {}
    for name, rows in results.items():
        if not isinstance(rows, dict) or not (name in CHECKS or name.startswith("fast_path ")):
            continue
        oks = [rows["ok"]] if "ok" in rows else [r["ok"] for r in rows.values() if "ok" in r]
        out[name] = "error" if "error" in rows else "pass" if all(oks) else "FAIL"
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tune_vqvae.bench.gpu_check",
                                description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small model, few steps (the CPU test)")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, help="training steps per fast-path curve (default 300)")
    p.add_argument("--only", nargs="+", help="run only these steps")
    p.add_argument("--budget-s", type=float, default=480, help="skip steps once this much time is spent")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction,
                   help="benchmark overhead, fused and packing compiled or not (default: on CUDA)")
    p.add_argument("--out-dir", default="benchmarks/results")
    return p


@cli_entry
def main(argv=None):
    a = build_parser().parse_args(argv)
    device = pick_device(a.device)
    bc = timing.BenchConfig(quick=a.quick, device=a.device, repeats=1 if a.quick else 3,
                           steps=2 if a.quick else 20, fid_images=20 if a.quick else None,
                           compile=a.compile)
    base = TrainConfig(model=bc.model(device) if not a.quick else replace(bc.model(device), hidden=16,
                       codebook_size=32), device=a.device, batch_size=32 if a.quick else 128)
    data = load_data(DataConfig(train_images=2048 if a.quick else None))
    if not lpips.weights_available(download=False):  # random weights: LPIPS's cost, not its values
        os.environ[lpips.WEIGHTS_ENV] = str(lpips.write_random_weights(tempfile.mkdtemp()))
    env = timing.environment(device)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tag = "cpu" if device.type == "cpu" else env["device"].replace(" ", "_")
    mode = {None: "", True: "-compiled", False: "-eager"}[a.compile] + ("-quick" if a.quick else "")
    path = out / f"{tag}-{env['date']}-gpu_check{mode}.json"
    results = {"environment": env, "settings": vars(a), "model": vars(base.model)}
    start = time.perf_counter()
    # The caps guard a GPU lease; a CPU (shared, slow) gets ten times longer and no budget.
    scale, budget = (10, float("inf")) if device.type == "cpu" else (1, a.budget_s)
    for name, (cap, run) in plan(a, base, data, bc, device).items():
        cap *= scale
        if a.only and name not in a.only:
            continue
        if time.perf_counter() - start > budget:
            results[name] = {"error": f"skipped: the {budget:.0f} s budget was spent", "ok": False}
            continue
        print(f"running {name} (cap {cap} s) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        results[name] = capped(cap, run)
        results.setdefault("seconds", {})[name] = time.perf_counter() - t0
        results["verdicts"] = verdicts(results)
        atomic_write_text(path, json.dumps(results, indent=2))
        rows = results[name]
        timing.print_table(name, rows if all(isinstance(r, dict) for r in rows.values()) else {"": rows})
    print(f"\nverdicts: {results.get('verdicts')}\nwrote {path}")
    return 0 if all(v == "pass" for v in results.get("verdicts", {}).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
