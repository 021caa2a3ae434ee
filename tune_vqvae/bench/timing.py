"""What every compute benchmark shares: `BenchConfig` (model, steps, repeats, device),
timing (`Timer`: CUDA events on a GPU; interleaved repeats so drift hits every run alike;
a failing variant becomes an error row, `survive`), the environment and the printed table.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..model import ModelConfig
from ..train import TrainConfig


@dataclass
class BenchConfig:
    quick: bool = False  # small model and few steps: under two minutes on a 2-core CPU
    device: str = "auto"
    data: str = "builtin"
    repeats: int = 5
    steps: int = 20  # training steps per timed repeat
    out_dir: str = "benchmarks/results"
    fid_images: int | None = None  # default 10,000 (100 with --quick)
    compile: bool | None = None  # TrainConfig.compile of overhead/fused/packing (None: on CUDA)

    def train_config(self, device: torch.device, **fields) -> TrainConfig:
        """The trainer settings every benchmark shares: model, device, compile."""
        return TrainConfig(model=self.model(device), device=self.device,
                           **{"compile": self.compile, **fields})

    def model(self, device: torch.device) -> ModelConfig:
        # The paper's model on a GPU; a small one where a CPU would take minutes per step.
        if self.quick or device.type == "cpu":
            return ModelConfig(hidden=64, codebook_size=128)
        return ModelConfig()


class Timer:
    """Wall time of a block; on CUDA measured with events, which time the GPU work."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            self.start, self.end = torch.cuda.Event(True), torch.cuda.Event(True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.end.record()
            self.end.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1000
        else:
            self.seconds = time.perf_counter() - self.t0


def summary(seconds: list[float], images: int) -> dict:
    """Median/min/max seconds of the repeats and the images/s of the median."""
    med = statistics.median(seconds)
    return {"median_s": med, "min_s": min(seconds), "max_s": max(seconds),
            "images_per_s": images / med, "repeats": len(seconds)}


def time_interleaved(runs: dict, device: torch.device, repeats: int, images: int) -> dict:
    """Median/min/max of each warmed-up run over `repeats`; the repeats interleave the runs,
    so drift of the machine (clocks, other load) hits every run alike."""
    times, failed = {name: [] for name in runs}, {}
    for _ in range(repeats):
        for name, run in runs.items():
            if name in failed:
                continue
            seconds = survive(name, lambda: time_once(run, device))
            if isinstance(seconds, dict):  # failed in a timed repeat (out of memory...): drop it
                failed[name] = seconds
            else:
                times[name].append(seconds)
    return {**{name: summary(t, images) for name, t in times.items() if name not in failed}, **failed}


def time_once(run, device: torch.device) -> float:
    with Timer(device) as t:
        run()
    return t.seconds


def compare(builds: dict, device: torch.device, repeats: int, images: int) -> dict:
    """Build every run and warm it up once (cuDNN autotuning, compilation), then time them
    interleaved. A run that fails becomes an error row: on a lent GPU one variant that fails
    (a compiler that does not support the GPU, out of memory) must not cost the others."""
    runs, failed = {}, {}
    for name, build in builds.items():
        run = survive(name, lambda: warm(build()))
        (failed if isinstance(run, dict) else runs)[name] = run
    return {**time_interleaved(runs, device, repeats, images), **failed}


def warm(run):
    run()
    return run


def survive(name: str, run):
    """run(), or its error as a row {"error": ...}, recorded in the JSON and printed."""
    try:
        return run()
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - recorded and printed, not hidden
        print(f"  {name} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return {"error": f"{type(e).__name__}: {str(e)[:500]}"}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def environment(device: torch.device) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {"device": name, "device_type": device.type, "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}


def print_table(title: str, rows: dict):
    print(f"\n{title}")
    if "error" in rows:
        print(f"  failed: {rows['error']}")
        return
    for name, row in rows.items():
        cells = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        print(f"  {name:18s} {cells}")
