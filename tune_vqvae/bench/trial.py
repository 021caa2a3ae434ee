"""What a trial costs outside its steps, and where a step's time goes.

`trial_cost` runs `python -m tune_vqvae.train` as a search trial would (a fresh process,
a real run) twice on one inductor cache: the first compiles cold, the second finds the
cache filled. Per run: seconds from process start to the first line (imports, data,
model), the sum of the epochs' step time, the first epoch's excess over the later ones
(compile and CUDA-graph capture), and the trial efficiency, step time / wall time.

`profile_step` profiles the compiled training step and returns the kernels that take the
most device time, the list a speed-up starts from.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..data import ImageData
from ..train import TrainConfig, Trainer


def sized_data(data: ImageData, train_images: int) -> ImageData:
    """`data` with `train_images` training images (the set repeated, every other copy
    mirrored): a CIFAR-sized epoch for timing. Its images mean nothing new."""
    x = data.x_train
    copies = [x if i % 2 == 0 else x.flip(-1) for i in range(-(-train_images // len(x)))]
    return replace(data, x_train=torch.cat(copies)[:train_images])


def write_sized_npz(path: Path, data: ImageData, train_images: int) -> Path:
    """`sized_data` as an .npz (keras layout) for the train CLI."""
    np.savez(path, x_train=sized_data(data, train_images).x_train.permute(0, 2, 3, 1).numpy(),
             x_test=data.x_test.permute(0, 2, 3, 1).numpy())
    return path


def timed_run(args: list[str], env: dict) -> dict:
    """One `python -m tune_vqvae.train` process: wall seconds, and when its first line came."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tune_vqvae.train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_line_s, tail = None, []
    for line in proc.stdout:
        first_line_s = first_line_s or time.perf_counter() - start
        tail = (tail + [line.rstrip()])[-5:]
    if proc.wait() != 0:
        raise RuntimeError(f"train exited {proc.returncode}: {' | '.join(tail)}")
    return {"wall_s": time.perf_counter() - start, "start_to_first_line_s": first_line_s}


def trial_cost(data: ImageData, train_args: list[str], train_images: int, epochs: int) -> dict:
    """Two real trials on one (initially empty) inductor cache: cold, then warm."""
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        npz = write_sized_npz(Path(d) / "data.npz", data, train_images)
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": f"{d}/inductor", "PYTHONUNBUFFERED": "1"}
        for name in ("cold cache", "warm cache"):
            out = Path(d) / name.replace(" ", "_")
            row = timed_run([*train_args, "--data", str(npz), "--epochs", str(epochs),
                             "--out", str(out)], env)
            epoch_s = [m["epoch_s"] for m in json.loads((out / "metrics.json").read_text())]
            steady = statistics.median(epoch_s[1:]) if len(epoch_s) > 1 else epoch_s[0]
            row.update(step_s=sum(epoch_s), first_epoch_excess_s=epoch_s[0] - steady,
                       outside_steps_s=row["wall_s"] - sum(epoch_s),
                       trial_efficiency=sum(epoch_s) / row["wall_s"],
                       steady_images_per_s=train_images / steady)
            rows[name] = row
    return rows


def profile_step(cfg: TrainConfig, data: ImageData, steps: int, top: int = 15) -> dict:
    """Top kernels of `steps` training steps, after a warm-up that compiles and captures."""
    from torch.profiler import ProfilerActivity, profile

    trainer = Trainer(cfg, data)
    batches = list(trainer.batches.epoch(0))[:steps]
    for x in batches[:3]:  # compile, capture, first replay
        trainer._step(x)
    trainer._sync()
    cuda = trainer.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for x in batches:
            trainer._step(x)
        trainer._sync()
    key = "device_time_total" if cuda else "cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, key) > 0]
    total = sum(getattr(e, "self_" + key) for e in events) or 1.0
    events.sort(key=lambda e: getattr(e, "self_" + key), reverse=True)
    per_step = 1000 * len(batches)  # profiler times are in microseconds
    rows = {"(all)": {"self_ms_per_step": total / per_step, "share": 1.0, "calls": len(batches),
                      "time": key}}
    rows.update({e.key[:100]: {"self_ms_per_step": getattr(e, "self_" + key) / per_step,
                               "share": getattr(e, "self_" + key) / total, "calls": e.count}
                 for e in events[:top]})
    return rows


def epoch_phases(cfg: TrainConfig, data: ImageData, epochs: int = 4) -> dict:
    """Median seconds per epoch of each phase of a trial's epoch, in process: the steps,
    the evaluation, the loss timing, TensorBoard and the checkpoint, durable (the train CLI)
    and not (a trial); the first epoch, which compiles, left out."""
    phases = {name: [] for name in ("steps", "evaluate", "time_recon_loss", "tensorboard",
                                    "checkpoint", "checkpoint, not durable")}
    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(cfg, data)
        trainer.start_logging(f"{d}/tb")
        for epoch in range(epochs):
            laps = {}
            t = time.perf_counter()
            _, laps["steps"], x = trainer._train_steps()
            t = time.perf_counter()
            metrics = trainer.evaluate()
            laps["evaluate"], t = time.perf_counter() - t, time.perf_counter()
            trainer.time_recon_loss(x)
            laps["time_recon_loss"], t = time.perf_counter() - t, time.perf_counter()
            trainer._log(metrics)
            laps["tensorboard"], t = time.perf_counter() - t, time.perf_counter()
            trainer.save_checkpoint(f"{d}/checkpoint.pt")
            laps["checkpoint"], t = time.perf_counter() - t, time.perf_counter()
            trainer.save_checkpoint(f"{d}/trial_checkpoint.pt", durable=False)  # as a trial does
            laps["checkpoint, not durable"] = time.perf_counter() - t
            if epoch > 0:
                for name, seconds in laps.items():
                    phases[name].append(seconds)
        trainer.close()
    return {name: {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s)}
            for name, s in phases.items()}


def reused_worker(cfg: TrainConfig, data: ImageData, epochs: int, trials: int = 2) -> dict:
    """Trials one after another in one process, as Tune runs them in a reused worker (no
    process start or imports; the in-memory and on-disk compile caches warm after the
    first). Each epoch does what the trainable does around the steps: the evaluation, a
    checkpoint into a fresh directory, and a copy of it as Ray's persistence to local
    storage makes (FID evaluations and Ray's own bookkeeping not included)."""
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        for k in range(trials):
            start = time.perf_counter()
            trainer = Trainer(cfg, data)
            epoch_s = []
            for epoch in range(epochs):
                epoch_s.append(trainer.train_epoch()["epoch_s"])
                with tempfile.TemporaryDirectory(dir=d) as ckpt:
                    trainer.save_checkpoint(f"{ckpt}/trainer.pt", durable=False)
                    shutil.copytree(ckpt, f"{d}/storage/trial_{k}/checkpoint_{epoch:06d}")
            trainer.close()
            wall = time.perf_counter() - start
            steady = statistics.median(epoch_s[1:]) if epochs > 1 else epoch_s[0]
            rows[f"trial {k + 1}"] = {
                "wall_s": wall, "step_s": sum(epoch_s), "first_epoch_excess_s": epoch_s[0] - steady,
                "outside_steps_per_epoch_s": (wall - sum(epoch_s)) / epochs,
                "trial_efficiency": sum(epoch_s) / wall,
                "steady_images_per_s": len(trainer.batches) * trainer.batches.batch_size / steady}
    return rows


def batch_sweep(cfg: TrainConfig, data: ImageData, sizes=(128, 256, 512, 1024), steps: int = 20,
                repeats: int = 3) -> dict:
    """Images/s of the training step at several batch sizes, interleaved: if small batches
    leave the device idle, images/s climbs with the batch; if the step is compute-bound, it
    stays flat."""
    from .compute import trainer_steps
    from .timing import compare

    builds = {f"batch {b}": (lambda b=b: trainer_steps(Trainer(replace(cfg, batch_size=b), data), steps))
              for b in sizes}
    rows = compare(builds, Trainer(cfg, data).device, repeats, images=1)
    for b in sizes:
        row = rows[f"batch {b}"]
        if "median_s" in row:  # an epoch may hold fewer than `steps` batches
            row["images_per_s"] = min(steps, len(data.x_train) // b) * b / row["median_s"]
    return rows
