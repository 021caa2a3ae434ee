"""What every compute benchmark shares: `BenchConfig` (model, steps, repeats, device),
timing (`Timer`: CUDA events on a GPU; interleaved repeats so drift hits every run alike;
a failing variant becomes an error row, `survive`), the paired interval of a ratio of step
times (`paired_ratio`, `bar_verdict`), the environment and the printed table.
"""

from __future__ import annotations

import math
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
from ..stats.intervals import mean_interval
from ..train import TrainConfig
from ..vocab import NOT_RESOLVED

OVERHEAD_BAR = 1.10  # the claim the overhead benchmark checks: a loss's step <= 1.10x MSE's


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
    """Median/min/max seconds of the repeats, the images/s of the median, and every repeat's
    seconds in the order they ran (`repeat_s`: repeat i of every run of one `time_interleaved`
    ran in the same round, so they pair; see `paired_ratio`)."""
    med = statistics.median(seconds)
    return {"median_s": med, "min_s": min(seconds), "max_s": max(seconds),
            "images_per_s": images / med, "repeats": len(seconds), "repeat_s": list(seconds)}


def paired_ratio(seconds: list[float], ref_seconds: list[float], bar: float = OVERHEAD_BAR,
                 level: float = 0.95) -> dict:
    """Step-time ratio of a run to a reference run from interleaved repeats, with an interval.

    Repeat i of both ran in the same round, back to back, so ratio_i = t_i / ref_i cancels
    the drift they share (clocks, other load); the ratios are paired, not two samples.
    Returns `ratio_median` (median of the ratio_i), `ratio_geomean` (exp of the mean log
    ratio) and its `level` interval `ratio_low`/`ratio_high` (None below 2 repeats), and
    `vs_bar`: `bar_verdict` of that interval against `bar`.

    The interval: Student t on the log ratios (stats.intervals.mean_interval), exponentiated.
    Logs, because timing noise is multiplicative and 1.1x and 1/1.1x lie equally far from 1.
    t, not a percentile bootstrap: at the 3-7 repeats a GPU lease affords the bootstrap of a
    mean under-covers (at n = 3 it has only 10 distinct resampled means; see
    stats.intervals.diff_interval), while t is exact for normal log ratios and wide where n
    is small, as it should be. It is the interval of the geometric mean of the ratios; the
    median ratio usually, not necessarily, lies inside it.
    """
    ratios = [t / r for t, r in zip(seconds, ref_seconds, strict=True)]
    out = {"ratio_median": statistics.median(ratios), "ratio_geomean": None,
           "ratio_low": None, "ratio_high": None}
    if len(ratios) >= 2:
        iv = mean_interval([math.log(r) for r in ratios], level)
        out.update(ratio_geomean=math.exp(iv.estimate), ratio_low=math.exp(iv.low),
                   ratio_high=math.exp(iv.high))
    return {**out, "bar": bar, "vs_bar": bar_verdict(out["ratio_low"], out["ratio_high"], bar)}


def bar_verdict(low: float | None, high: float | None, bar: float) -> str:
    """"met" when the whole interval [low, high] lies at or below `bar`, "missed" when it lies
    wholly above, else "not resolved" (it straddles the bar, or there is no interval)."""
    if low is None or high is None:
        return NOT_RESOLVED
    if high <= bar:
        return "met"
    if low > bar:
        return "missed"
    return NOT_RESOLVED


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
        cells = "  ".join(f"{k}={_cell(v)}" for k, v in row.items())
        print(f"  {name:18s} {cells}")


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ",".join(_cell(x) for x in v) + "]"
    return str(v)
