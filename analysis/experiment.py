"""Read Ray Tune experiment directories (the files, as they are): find the experiments under
the paths given, and read one into `Trial`s (config, results, Ray's status, error, newest
checkpoint), completing a cut-off result.json from the newest checkpoint. `analysis.load`
(see its docstring for the layout and the rules) turns the trials into one row each.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tune_vqvae.errors import UserError
from tune_vqvae.vocab import TRIAL_STATE_FILE


@dataclass
class Trial:
    experiment: str
    path: Path
    config: dict
    history: pd.DataFrame  # one row per reported result
    ray_status: str | None = None  # from experiment_state-*.json, if listed there
    error: str | None = None  # the exception line of error.txt
    notes: list[str] = field(default_factory=list)
    row: dict = field(default_factory=dict)  # the search's results.json row, if any
    damage: list[str] = field(default_factory=list)  # damaged files, named (CLI warnings)
    cut_line: int | None = None  # result.json's cut-off last line, where no checkpoint completed it
    checkpoint_epoch: float | None = None  # the epoch of the newest checkpoint's trial_state.json


def _trial_dirs(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_dir() and (p / "params.json").exists())


def is_experiment(d: Path) -> bool:
    return any(d.glob("experiment_state-*.json")) or bool(_trial_dirs(d))


def find_experiments(paths: list[str]) -> list[Path]:
    """Experiment dirs named, or found one level below a named storage dir."""
    found: list[Path] = []
    for raw in paths:
        d = Path(raw).expanduser()
        if not d.exists():
            raise UserError(f"{raw}: no such directory; give a Ray Tune experiment directory "
                            f"(the search prints it) or the storage directory holding several")
        if not d.is_dir():
            raise UserError(f"{raw} is a file, not a directory; give an experiment directory")
        if (d / "params.json").exists() and (d / "result.json").exists():
            raise UserError(f"{raw} is one trial's directory; give the experiment directory "
                            f"above it ({d.resolve().parent}) or the search directory")
        if is_experiment(d):
            found.append(d.resolve())
            continue
        subs = [s.resolve() for s in sorted(d.iterdir()) if s.is_dir() and is_experiment(s)]
        if not subs:  # the storage path holding several searches
            subs = [x.resolve() for s in sorted(d.iterdir()) if s.is_dir()
                    for x in sorted(s.iterdir()) if x.is_dir() and is_experiment(x)]
        if not subs:
            raise UserError(f"{raw} is not a Ray Tune experiment directory (no experiment_state-*"
                            f".json and no trial directories with params.json), nor a storage "
                            f"directory holding some; point at what the search wrote")
        found.extend(subs)
    unique = list(dict.fromkeys(found))
    return unique


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_results(path: Path) -> tuple[pd.DataFrame, int | None]:
    """result.json lines -> (rows, the number of a cut-off last line or None). The last line
    is cut off by a writer mid-flush, or by damage: the caller completes it from the checkpoint
    or says so. A broken line before the last is damage that nothing can repair."""
    rows, cut = [], None
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return pd.DataFrame(), None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if i == len(lines) - 1:
                cut = i + 1
                continue
            raise UserError(f"{path}: line {i + 1} is not JSON; the experiment is damaged "
                            f"(re-run the trial or remove its directory)") from None
        row.pop("config", None)
        rows.append({k: v for k, v in row.items() if not isinstance(v, (dict, list))})
    return pd.DataFrame(rows), cut


def _checkpointed_results(trial: Path) -> tuple[list[dict], Path | None, float | None]:
    """Every result the trial reported up to its newest checkpoint (TRIAL_STATE_FILE):
    (results, that file, its epoch); ([], None, None) without one."""
    for c in sorted(trial.glob("checkpoint_*"), reverse=True):
        state = read_json(c / TRIAL_STATE_FILE)
        if isinstance(state, dict) and isinstance(state.get("reported"), list):
            reported = [r for r in state["reported"] if isinstance(r, dict) and "epoch" in r]
            return reported, c / TRIAL_STATE_FILE, to_float(state.get("epoch"))
    return [], None, None


def _with_checkpointed_results(trial: Path, history: pd.DataFrame, reported: list[dict]
                               ) -> tuple[pd.DataFrame, list[int]]:
    """result.json's rows plus the epochs only the checkpoint kept, in epoch order."""
    have = set(history["epoch"].tolist()) if "epoch" in history else set()
    missing = [r for r in reported if r["epoch"] not in have]
    if not missing:
        return history, []
    merged = pd.concat([history, pd.DataFrame(missing)], ignore_index=True)
    merged = merged.sort_values("epoch", kind="stable").reset_index(drop=True)
    return merged, [int(r["epoch"]) for r in missing]


def last_epoch(history: pd.DataFrame) -> float:
    return last_value(history, "epoch") if "epoch" in history else last_value(history, "training_iteration")


def _experiment_state(d: Path) -> dict[str, dict]:
    """relative_logdir -> {status, error_filename} from the newest experiment_state file."""
    states = sorted(d.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        return {}
    data = read_json(states[-1])
    if not isinstance(data, dict):
        return {}  # being rewritten or damaged: the trial files still say what happened
    out = {}
    for item in data.get("trial_data", []):
        try:
            meta = json.loads(item[0]) if isinstance(item[0], str) else item[0]
            run = json.loads(item[1]) if isinstance(item[1], str) else item[1]
        except (ValueError, IndexError, TypeError):
            continue
        logdir = meta.get("relative_logdir")
        if logdir:
            out[logdir] = {"status": meta.get("status"), "config": meta.get("config"),
                           "num_failures": (run or {}).get("num_failures", 0)}
    return out


def _error_reason(path: Path) -> str | None:
    """The first line of the exception in a trial's error.txt ("SomeError: message"): Ray
    writes "Failure # k (...)", the actor line, the traceback (frames indented), then the
    exception at column 0, whose message may go on over further lines."""
    try:
        raw = [re.sub(r"\x1b\[[0-9;]*m", "", ln) for ln in path.read_text().splitlines()]
    except (OSError, UnicodeDecodeError):
        return None
    frames = [i for i, ln in enumerate(raw) if ln.lstrip().startswith('File "')]
    if frames:  # the first unindented line after the last frame (of the last traceback)
        for ln in raw[frames[-1] + 1:]:
            if ln.strip() and not ln[0].isspace():
                return ln.strip()[:300]
    lines = [ln.strip() for ln in raw if ln.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(: |$)", line) and not line.startswith("File "):
            return line[:300]
    return lines[-1][:300] if lines else None


def _error_of(t: Path) -> str | None:
    if (t / "error.txt").exists():
        return _error_reason(t / "error.txt") or f"{t / 'error.txt'} is empty"
    if (t / "error.pkl").exists():  # a pickled Ray exception: reading it would need ray
        return f"Ray recorded an error in {t / 'error.pkl'} (no error.txt)"
    return None


def read_experiment(d: Path) -> list[Trial]:
    state = _experiment_state(d)
    trials = []
    seen = set()
    for t in _trial_dirs(d):
        config = read_json(t / "params.json")
        notes = []
        if not isinstance(config, dict):
            config = (state.get(t.name) or {}).get("config")
            if not isinstance(config, dict):
                raise UserError(f"{t / 'params.json'} is unreadable and the trial is not in "
                                f"{d.name}'s experiment state: the experiment is half-written; "
                                f"wait for the search to write it or remove that trial directory")
            notes.append("params.json unreadable; config taken from the experiment state")
        results = t / "result.json"
        history, cut = _read_results(results)
        read_to = last_epoch(history)
        reported, state_file, checkpoint_epoch = _checkpointed_results(t)
        history, recovered = _with_checkpointed_results(t, history, reported)
        damage = []
        if cut and any(e > read_to or math.isnan(read_to) for e in recovered):
            damage.append(f"{results}: line {cut} is cut off; epochs {_epochs(recovered)} read from "
                          f"{state_file.relative_to(t)} instead")
            cut = None
        elif cut:
            damage.append(f"{results}: line {cut} is cut off (being written, or damaged) and no "
                          f"checkpoint holds a later epoch than {read_to:g}")
        if recovered and not damage:
            notes.append(f"epoch(s) {recovered} missing from result.json, read from the last "
                         f"checkpoint (a worker died before Ray saved the file)")
        trials.append(Trial(
            experiment=d.name, path=t, config=config, history=history,
            ray_status=(state.get(t.name) or {}).get("status"),
            error=_error_of(t), notes=notes + damage, damage=damage, cut_line=cut,
            checkpoint_epoch=checkpoint_epoch))
        seen.add(t.name)
    for logdir, s in state.items():  # listed but no directory yet: pending
        if logdir not in seen and isinstance(s.get("config"), dict):
            trials.append(Trial(experiment=d.name, path=d / logdir, config=s["config"],
                                history=pd.DataFrame(), ray_status=s.get("status") or "PENDING"))
    return trials


def _epochs(epochs: list[int]) -> str:
    return f"{epochs[0]}-{epochs[-1]}" if len(epochs) > 2 and epochs == list(
        range(epochs[0], epochs[-1] + 1)) else ", ".join(map(str, epochs))


def to_float(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def last_value(history: pd.DataFrame, col: str) -> float:
    if col not in history:
        return math.nan
    s = pd.to_numeric(history[col], errors="coerce").dropna()
    return float(s.iloc[-1]) if len(s) else math.nan
