"""Reconstructions of fixed held-out images by the best trial of each loss (and the MSE
baseline), from their Ray checkpoints (a Trainer state in checkpoint_NNNNNN/trainer.pt)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from .load import CHECKPOINT_FILE


class Progress:
    """A progress bar on stderr (one line per step when stderr is not a terminal)."""

    def __init__(self, total: int, what: str, stream=None):
        self.total, self.what, self.done = total, what, 0
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        label = " ".join(label.split())
        width = 24
        filled = int(width * self.done / max(1, self.total))
        bar = "#" * filled + "-" * (width - filled)
        line = (f"{self.what} [{bar}] {self.done}/{self.total} {label} "
                f"({time.perf_counter() - self.start:.1f} s)")
        if self.tty:
            end = "\n" if self.done == self.total else ""
            self.stream.write("\r\x1b[K" + line + end)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _train_config(state: dict, device: str):
    from tune_vqvae.train import TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    d = {k: v for k, v in state["config"].items() if k in known}
    d["device"] = device
    if "compile" in known:
        d["compile"] = False
    return TrainConfig.from_dict(d)


def reconstruct(selection: list[tuple[str, str]], n_images: int = 8, device: str = "auto",
                data_source: str | None = None, stream=None):
    """selection: [(row title, checkpoint dir)]. Returns (originals, [(title, recon)], notes).

    The held-out images are the first `n_images` test images of the data the first
    checkpoint was trained on (`data_source` overrides where that data is read from)."""
    from tune_vqvae.data import load_data
    from tune_vqvae.errors import UnsafeFileError, UserError
    from tune_vqvae.train import Trainer, load_state

    notes: list[str] = []
    progress = Progress(len(selection), "loading checkpoints", stream)
    rows, data, originals, fingerprint = [], None, None, None
    for title, ckpt_dir in selection:
        path = Path(ckpt_dir) / CHECKPOINT_FILE
        try:
            state = load_state(path)
        except UnsafeFileError:
            raise  # never skipped quietly: the user must know the search holds such a file
        except UserError as e:
            notes.append(f"{title}: {e}; row left out")
            progress.step(f"{title} (unreadable)")
            continue
        cfg = _train_config(state, device)
        if data is None:
            if data_source:
                cfg.data.source = data_source
            try:
                data = load_data(cfg.data)
            except UserError as e:
                notes.append(f"reconstructions skipped: the trials' data cannot be loaded here "
                             f"({e}); pass --data to point at it")
                return None, [], notes
            originals = data.x_test[:n_images]
            fingerprint = data.fingerprint
        trainer = Trainer(cfg, data=data)
        trainer.load_state_dict(state)
        rows.append((title, trainer.reconstruct(originals).cpu()))
        trainer.close()
        progress.step(title)
    if data is not None and fingerprint:
        notes.append(f"images: the first {len(originals)} test images of {data.name}")
    return (originals.float().div(255) if originals is not None else None), rows, notes
