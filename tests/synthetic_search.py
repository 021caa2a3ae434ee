"""Search directories written by hand, with known answers, for the analysis tests.

`write_trial` writes one trial directory as Ray Tune does (params.json, result.json with
one line per epoch); `realistic_search` a whole search shaped like our CIFAR-10 measurements
(issue 12): SWD about 67 for the MSE baseline, 3.5% run-to-run noise, SSIM flat at the
baseline for small w with a rise above 1, GMSD with a shallow optimum near w = 0.3 and a
steep rise above 1, trials stopped early by ASHA at epoch 2 with values far above the rest,
replicate seeds and a confirmation stage.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

EPOCHS = 6
BASELINE_SWD = 67.0
NOISE_CV = 0.035


def write_trial(exp: Path, name: str, config: dict, values: list[float], *, objective: str = "swd",
                extra: dict | None = None, planned: int = EPOCHS, seed: int = 0) -> Path:
    """One trial directory: `values[e]` is the objective at epoch e + 1; the trial reported
    len(values) epochs of `planned` (fewer: it was stopped). `extra` goes into every line
    (the issue-12 contract: role, seed, epochs_trained, stopped)."""
    d = exp / name
    d.mkdir(parents=True)
    params = {"objective": objective, "train": {"epochs": planned, "seed": seed, "data": {}}, **config}
    (d / "params.json").write_text(json.dumps(params))
    lines = []
    for e, v in enumerate(values, start=1):
        row = {"epoch": float(e), objective: v, "objective": v, "val_psnr": 25.0 - v / 10,
               "val_ssim": 0.45, "step_ms": 10.0, "recon_loss_ms": 1.0, "images_per_s": 1e3,
               "time_total_s": 10.0 * e, "trial_id": name.split("_")[0], "diverged": 0.0,
               "done": e == len(values), **(extra or {})}
        lines.append(json.dumps(row))
    (d / "result.json").write_text("\n".join(lines) + "\n")
    return d


def _curve(loss: str, w: float) -> float:
    """The true objective of mse + w * loss (no noise), in SWD units."""
    x = math.log10(w)
    if loss == "ssim":  # flat at the baseline, rises above w = 2
        return BASELINE_SWD * (1 + 0.12 * max(x - 0.3, 0) ** 2)
    # gmsd: 4% better than MSE around w = 0.3, steep rise above 1
    return BASELINE_SWD * (1 - 0.04 * math.exp(-((x + 0.5) / 0.45) ** 2) + 0.35 * max(x, 0) ** 2)


NO_MSE = {"ssim": 67.9, "gmsd": 160.0}


class _Writer:
    def __init__(self, root: Path, rng, contract: bool):
        self.root, self.rng, self.contract, self.n = root, rng, contract, 0

    def run(self, exp: str, loss: str, role: str, w: float | None, seed: int, *,
            stop_at: int | None = None, with_mse: bool = True, value: float | None = None,
            candidate: str = "") -> None:
        self.n += 1
        true = value if value is not None else BASELINE_SWD if loss == "mse" else \
            _curve(loss, w) if with_mse else NO_MSE[loss]
        final = true * (1 + NOISE_CV * self.rng.normal())
        epochs = stop_at or EPOCHS
        values = [final * (1 + 1.2 * (EPOCHS - e) / EPOCHS) for e in range(1, epochs + 1)]
        config = {"role": "baseline", "loss": "mse"} if loss == "mse" else \
            {"role": "search", "loss": loss, "with_mse": with_mse, "w": w if with_mse else None}
        extra = {"role": role, "seed": seed, "epochs_trained": epochs,
                 "stopped": stop_at is not None} if self.contract else None
        if candidate and self.contract:
            extra["candidate"] = candidate
        tag = "mse" if loss == "mse" else f"w{w:.4g}" if with_mse else "nomse"
        write_trial(self.root / exp, f"{self.n:05d}abc_{tag}", config, values, extra=extra, seed=seed)


def realistic_search(root: Path, *, seed: int = 0, contract: bool = True,
                     losses: tuple[str, ...] = ("ssim", "gmsd")) -> Path:
    """A search dir <root>/search: baseline (5 seeds), per loss the paper's grid, searched w
    (2 replicates each, two of them stopped at epoch 2), the confirmation stage (3 fresh seeds
    of the candidates). `contract`: write role/seed/epochs_trained/stopped into the results
    (a search after issue 12), else leave them to be derived (an older search)."""
    search = root / "search"
    out = _Writer(search, np.random.default_rng(seed), contract)
    for s in range(5):
        out.run("baseline" if s == 0 else "baseline-seeds", "mse", "baseline", None, s)
    searched = {"ssim": [0.001, 0.008, 0.05, 0.12, 2.4, 7.4], "gmsd": [0.001, 0.008, 0.06, 0.3, 2.4, 7.4]}
    for loss in losses:
        for w in (1.0, 0.5, 0.25):
            out.run(loss, loss, "paper", w, 0)
        out.run(loss, loss, "paper", None, 0, with_mse=False)
        for i, w in enumerate(searched[loss]):
            stop = 2 if i < 2 else None  # ASHA cut the two smallest weights at epoch 2
            for s in range(2):
                out.run(loss, loss, "search", w, s, stop_at=stop)
        confirm = {0.3: "recommended", 0.5: "best_paper"} if loss == "gmsd" else \
            {0.12: "recommended", 0.5: "best_paper"}
        for w, candidate in confirm.items():
            for s in range(3):
                out.run(loss + "-confirm", loss, "confirm", w, 1000 + s, candidate=candidate)
    return search
