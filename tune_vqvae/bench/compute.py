"""Benchmarks: `python -m tune_vqvae.bench [train|overhead|fid|fused|packing|all] [--quick]`.

Every figure is the median of repeated timings (min/max kept), measured side by side in
one process so ratios compare like with like. On CUDA, CUDA events time the GPU work.
Results print as a table and are written atomically to
benchmarks/results/<device>-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import DataConfig, ImageData, load_data, to_model_range
from ..errors import UserError, atomic_write_text, cli_entry
from ..losses import LOSSES, LossConfig, lpips
from ..metrics.frechet import StreamingStats
from ..metrics.inception import FID_WEIGHTS_FILE, InceptionFeatures
from ..metrics.scorer import to_unit_range
from ..model import VQVAE
from ..train import TrainConfig, Trainer, pick_device
from .timing import BenchConfig, compare, environment, paired_ratio, print_table, survive, time_interleaved


def trainer_steps(trainer: Trainer, steps: int):
    """Our training path as a timeable run: `steps` optimiser steps on device-gathered
    batches, no host sync inside the loop."""
    batches = list(trainer.batches.epoch(0))[:steps]
    return lambda: [trainer._step(x) for x in batches]


def reference_steps(cfg: TrainConfig, data: ImageData, steps: int):
    """The reference pipeline as a timeable run: CPU DataLoader with per-image transforms,
    fp32, .item() each step."""
    from torch.utils.data import DataLoader, Dataset

    class PerImage(Dataset):  # what torchvision's CIFAR10 + ToTensor + Normalize does per image
        def __len__(self):
            return len(data.x_train)

        def __getitem__(self, i):
            return to_model_range(data.x_train[i])

    device = pick_device(cfg.device)
    model = VQVAE(cfg.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loader = DataLoader(PerImage(), batch_size=cfg.batch_size, shuffle=True, drop_last=True)

    def run():
        for i, x in enumerate(loader):
            if i == steps:
                break
            x = x.to(device)
            x_tilde, z_e, z_q, _ = model(x)
            vq, commit = model.vq_losses(z_e, z_q)
            loss = F.mse_loss(x_tilde, x) + vq + cfg.model.beta * commit
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()  # the reference logs every step: a host sync

    return run


def bench_train(bc: BenchConfig, data: ImageData) -> dict:
    """Images/s of our training path (each optimisation switchable) vs the reference."""
    device = pick_device(bc.device)
    base = dict(model=bc.model(device), device=bc.device, data=DataConfig(source=bc.data))
    variants = {"optimised": {}, "no fused Adam": {"fused_adam": False}}
    if device.type == "cuda":  # the switches below act on CUDA only; "optimised" is compiled there
        variants.update({"fp32": {"amp": False}, "NCHW": {"channels_last": False},
                         "compiled, no CUDA graphs": {"compile": True, "compile_mode": "default"},
                         "eager": {"compile": False}, "eager, fp32": {"compile": False, "amp": False},
                         "eager, NCHW": {"compile": False, "channels_last": False}})
    builds = {name: (lambda extra=extra: trainer_steps(Trainer(TrainConfig(**base, **extra), data), bc.steps))
              for name, extra in variants.items()}
    builds["reference"] = lambda: reference_steps(TrainConfig(**base), data, bc.steps)
    rows = compare(builds, device, bc.repeats, bc.steps * TrainConfig.batch_size)
    ref = rows["reference"].get("images_per_s")
    for row in rows.values():
        if "images_per_s" in row and ref:
            row["speedup_vs_reference"] = row["images_per_s"] / ref
            row["cifar10_epoch_s"] = 50_000 / row["images_per_s"]
    return rows


def bench_overhead(bc: BenchConfig, data: ImageData) -> dict:
    """Step time of mse + 0.5 * L for every loss, relative to MSE alone, interleaved repeats.

    `step_time_vs_mse` is median over median; `ratio_*` and `vs_bar` pair each repeat with
    MSE's of the same round and judge the interval against the 1.10x bar (timing.paired_ratio)."""
    device = pick_device(bc.device)
    names = (*LOSSES, "lpips") if lpips.weights_available() else LOSSES
    if "lpips" not in names:  # random-weight files (lpips.write_random_weights) time the same
        print(f"  lpips skipped: no weights files (set {lpips.WEIGHTS_ENV}=DIR)", file=sys.stderr)
    builds = {name: (lambda name=name: trainer_steps(Trainer(
        bc.train_config(device, loss=LossConfig(name, 0.5)), data), bc.steps))
        for name in names}
    rows = compare(builds, device, bc.repeats, bc.steps * TrainConfig.batch_size)
    mse = rows["mse"]
    for row in rows.values():
        if "median_s" in row and "median_s" in mse:
            row["step_time_vs_mse"] = row["median_s"] / mse["median_s"]
            # repeat i of every loss ran in the same round as MSE's repeat i: paired ratios
            row.update(paired_ratio(row["repeat_s"], mse["repeat_s"]))  # bar: timing.OVERHEAD_BAR
    return rows


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
    extractor: torch.nn.Module,
    n_images: int,
    batch_size: int = 200,
    device: str | torch.device = "cpu",
    image_size: int = 32,
) -> dict:
    """Images/s of feature extraction + streaming stats on random uint8 images, and peak
    memory (CUDA: max allocated; CPU: process peak RSS)."""
    import resource

    device = torch.device(device)
    extractor = extractor.to(device).eval()
    gen = torch.Generator().manual_seed(0)
    stats = StreamingStats()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        warm = torch.randint(0, 256, (2, 3, image_size, image_size), dtype=torch.uint8)
        extractor(to_unit_range(warm, device))
        start = time.perf_counter()
        for i in range(0, n_images, batch_size):
            n = min(batch_size, n_images - i)
            x = torch.randint(0, 256, (n, 3, image_size, image_size), generator=gen, dtype=torch.uint8)
            stats.update(extractor(to_unit_range(x, device)))
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


def bench_fid(bc: BenchConfig, data: ImageData) -> dict:
    """Inception feature throughput and peak memory at two image counts (memory must stay flat).

    Random-weight Inception: the same network and cost as the real FID weights, which this
    benchmark therefore does not need.
    """
    device = pick_device(bc.device)
    big = bc.fid_images or (100 if bc.quick else 10_000)
    batch = 50 if device.type == "cpu" else 500  # CPU: bounds the 299x299 activations (~2 GB)
    extractor = random_weight_inception()
    rows = {f"{n} images": benchmark_features(extractor, n, batch, device) for n in (big // 10, big)}
    rows[f"kid {big} images"] = bench_kid(big, device)
    return rows


def bench_kid(n: int, device: torch.device, dims: int = 2048) -> dict:
    """KID of two sets of `n` pool3-sized features (the scorer's 100 subsets of up to 1,000):
    its cost is the float64 kernel, so features are random; the kernel does not care."""
    from ..metrics.kid import kid

    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand(n, dims, generator=gen, dtype=torch.float64) for _ in range(2))
    kid(a[:16], b[:16], subsets=1, device=device)  # warm-up (CUDA context, kernels)
    start = time.perf_counter()
    kid(a, b, subsets=100, subset_size=1000, device=device)  # returns floats: synchronised
    seconds = time.perf_counter() - start
    return {"images": n, "subsets": 100, "subset_size": min(1000, n), "seconds": seconds}


def bench_fused(bc: BenchConfig, data: ImageData, groups=(2, 4, 8)) -> dict:
    """G weights of one loss: one fused grouped model vs G separate models stepping in turn.

    Same device, same batches, interleaved repeats; images count every model's batch.
    """
    from ..train import FusedTrainer

    device = pick_device(bc.device)
    cfg = bc.train_config(device, loss=LossConfig("gmsd"))
    rows = {}
    for g in groups[:2] if bc.quick else groups:
        weights = [0.25 * (i + 1) for i in range(g)]

        def separate(weights=weights):
            runs = [trainer_steps(Trainer(replace(cfg, loss=LossConfig("gmsd", w)), data), bc.steps)
                    for w in weights]
            return lambda: [run() for run in runs]

        pair = compare({f"{g} fused": lambda weights=weights: trainer_steps(
                            FusedTrainer(cfg, weights, data), bc.steps),
                        f"{g} separate": separate},
                       device, bc.repeats, bc.steps * cfg.batch_size * g)
        fused, alone = pair[f"{g} fused"], pair[f"{g} separate"]
        if "median_s" in fused and "median_s" in alone:
            fused["speedup_vs_separate"] = alone["median_s"] / fused["median_s"]
        rows.update(pair)
    return rows


def bench_packing(bc: BenchConfig, counts=(1, 2, 4, 8)) -> dict:
    """Total images/s of N concurrent training processes sharing one device.

    A barrier: every child builds its model and warms up, says "ready", and starts its
    timed steps only when the parent has heard from all of them.
    """
    rows = {}
    for n in counts[:3] if bc.quick else counts:
        cmd = [sys.executable, "-m", "tune_vqvae.bench", "child", "--device", bc.device,
               "--data", bc.data, "--steps", str(bc.steps)] + (["--quick"] if bc.quick else []) + (
               [] if bc.compile is None else ["--compile" if bc.compile else "--no-compile"])
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // n))}
        procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                 for _ in range(n)]
        try:
            rates = run_in_lockstep(procs)
        finally:
            for p in procs:  # after a failure no child may wait for a "go" forever
                if p.poll() is None:
                    p.kill()
                p.wait()
        rows[f"{n} per device"] = {"trials": n, "total_images_per_s": sum(rates)}
    return rows


def run_in_lockstep(procs: list[subprocess.Popen]) -> list[float]:
    """Wait for every child's "ready", send all of them "go", return their images/s."""
    for p in procs:
        while (line := p.stdout.readline()) and line.strip() != "ready":
            pass  # anything a library printed before the barrier
        if not line:
            raise RuntimeError(f"packing child exited before its warm-up ended (exit {p.wait()})")
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    return [json.loads(p.communicate()[0].strip().splitlines()[-1])["images_per_s"] for p in procs]


def packing_child(bc: BenchConfig, data: ImageData, device: torch.device) -> dict:
    """One packed process: build and warm up, say "ready", wait for the parent's go, time."""
    run = trainer_steps(Trainer(bc.train_config(device), data), bc.steps)
    run()
    print("ready", flush=True)
    sys.stdin.readline()
    return time_interleaved({"child": run}, device, bc.repeats, bc.steps * TrainConfig.batch_size)["child"]


BENCHES = {"train": bench_train, "overhead": bench_overhead, "fused": bench_fused, "fid": bench_fid}


@cli_entry
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tune_vqvae.bench", description=__doc__.split("\n")[0])
    p.add_argument("what", nargs="?", default="all",
                   choices=[*BENCHES, "packing", "all", "child", "search", "load"])
    p.add_argument("--quick", action="store_true", help="small model, few steps (CPU, < 2 min)")
    p.add_argument("--device", default="auto")
    p.add_argument("--data", default="builtin", help="builtin | cifar10 | FILE.npz")
    p.add_argument("--repeats", type=int, help="timed repeats (default 5; 3 with --quick)")
    p.add_argument("--steps", type=int, help="training steps per timed repeat")
    p.add_argument("--out-dir", default="benchmarks/results")
    p.add_argument("--fid-images", type=int, help="images of the FID benchmark (default 10000)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction,
                   help="overhead, fused and packing compiled or not (default: compiled on CUDA)")
    a = p.parse_args(argv)
    steps = a.steps or (5 if a.quick else 20)
    repeats = a.repeats or (3 if a.quick else 5)
    bc = BenchConfig(a.quick, a.device, a.data, repeats, steps, a.out_dir, a.fid_images, a.compile)
    device = pick_device(bc.device)
    data = load_data(DataConfig(source=bc.data, train_images=steps * 128))
    if a.what == "child":  # one process of the packing benchmark
        print(json.dumps(packing_child(bc, data, device)))
        return 0
    results = {"environment": environment(device), "settings": vars(a)}
    for name in (BENCHES if a.what == "all" else [a.what] if a.what != "packing" else []):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = survive(name, lambda: BENCHES[name](bc, data))
        print_table(name, results[name])
    if a.what in ("packing", "all"):
        print("running packing ...", file=sys.stderr, flush=True)
        results["packing"] = survive("packing", lambda: bench_packing(bc))
        print_table("packing", results["packing"])
    out = Path(bc.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {out} ({e.strerror}); pass a writable --out-dir") from None
    env = results["environment"]
    device_tag = "cpu" if env["device_type"] == "cpu" else env["device"].replace(" ", "_")
    path = out / f"{device_tag}-{env['date']}-{a.what}{'-quick' if bc.quick else ''}.json"
    atomic_write_text(path, json.dumps(results, indent=2))
    print(f"\nwrote {path}")
    sections = [v for k, v in results.items() if k not in ("environment", "settings")]
    failed = any("error" in sec or any("error" in row for row in sec.values() if isinstance(row, dict))
                 for sec in sections)
    if failed:
        print("some benchmarks failed: see 'error' in the table and the JSON", file=sys.stderr)
    return 1 if failed else 0

