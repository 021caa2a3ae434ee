"""Read Ray Tune experiment directories into one table of trials, with plain json/pandas (the
files by `analysis.experiment`, one row per trial here).

Layout read (Ray Tune 2.x, local storage):

    <storage>/<experiment>/experiment_state-<date>.json   trial statuses (written periodically)
    <storage>/<experiment>/<trial dir>/params.json         the trial's config
    <storage>/<experiment>/<trial dir>/result.json         one JSON line per reported epoch
    <storage>/<experiment>/<trial dir>/error.txt           traceback of a failed trial
    <storage>/<experiment>/<trial dir>/checkpoint_NNNNNN/  one per epoch (trainer.pt inside)

    <storage>/<search>/results.json                         the search's rows (role, status), if written

Nothing here imports ray or needs the search process: a finished experiment and one still
running read the same way.

Damaged files are named, never reinterpreted (`Trial.damage`, printed as warnings by the CLI):
a result.json whose last line is cut off is completed from the newest checkpoint's
trial_state.json (every result the trial reported); where no checkpoint holds the missing
epochs, a trial that ended is "damaged" (its final results unknown, no metrics), never
"stopped early", and a running one keeps what was read. A trial Ray finished (TERMINATED) short
of its epochs counts as stopped by the scheduler only when its last result carries Ray's stop
marker (`done`), the search recorded it as stopped, or its newest checkpoint ends where its
results do. An experiment whose every trial failed says so, with the first line of the
exception in their error.txt.

The trial fields of issue 12 are read where a search wrote them and derived where it did not,
so older experiments analyse the same way: `role` (baseline, paper, search, seed, confirm;
from the last result, else the results.json row, else the config, a grid point being
"paper"), `seed`, `epochs_trained` (else the last reported epoch) and `stopped` (ended
before all epochs by the scheduler; else derived from the trial's state).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd

from tune_vqvae import objectives, vocab
from tune_vqvae.errors import UserError
from tune_vqvae.vocab import (
    BASELINE,
    BASELINE_EXPERIMENT,
    CHECKPOINT_FILE,
    EVAL_METRICS,
    HALF_METRICS,
    PAPER,
    RESULTS_JSON,
    SEARCH,
    SEED,
    SEEDS_SUFFIX,
    SETTINGS_FILE,
    TEST_METRICS,
    config_point,
    joint_weights,
    label,
    on_paper_grid,
    weight_params,
)

from .experiment import (
    Trial,
    find_experiments,
    is_experiment,
    last_epoch,
    last_value,
    read_experiment,
    read_json,
    to_float,
)

CONFIRM = vocab.CONFIRM  # the confirmation stage's runs
CONFIRM_SUFFIX = getattr(vocab, "CONFIRM_SUFFIX", "-confirm")  # <search>/<loss>-confirm/
TRIAL_ROLES = (BASELINE, PAPER, SEARCH, SEED, CONFIRM)

# Trial states in the report (Ray's TERMINATED is split by what actually happened).
COMPLETED, STOPPED, DIVERGED, FAILED, RUNNING, PENDING, DAMAGED = (
    "completed", "stopped early", "diverged", "failed", "running", "pending", "damaged")
IN_PROGRESS = (RUNNING, PENDING)


# --- finding experiments -----------------------------------------------------------------


# --- reading one experiment --------------------------------------------------------------


# --- one row per trial -------------------------------------------------------------------


def trial_settings(config: dict) -> tuple[str, str, bool, float]:
    """(loss, role, with_mse, w): tune_vqvae.vocab.config_point, w NaN if none (a joint
    loss's weights are its own columns, w1, w2)."""
    loss, with_mse, w = config_point(config)
    role = BASELINE if loss == "mse" else config.get("role", SEARCH)
    return str(loss), str(role), with_mse, w if isinstance(w, float) else math.nan


def _mean_after_first(history: pd.DataFrame, col: str) -> float:
    """Mean over epochs, leaving out the first (warm-up, allocation, compilation) if more."""
    if col not in history:
        return math.nan
    s = pd.to_numeric(history[col], errors="coerce").dropna()
    if len(s) > 1:
        s = s.iloc[1:]
    return float(s.mean()) if len(s) else math.nan


def _checkpoint(t: Trial) -> Path | None:
    """The checkpoint of the trial's last reported result (holding a Trainer state)."""
    names = []
    if "checkpoint_dir_name" in t.history:
        names = [n for n in t.history["checkpoint_dir_name"].dropna().tolist() if n]
    candidates = [t.path / n for n in reversed(names)]
    candidates += sorted(t.path.glob("checkpoint_*"), reverse=True)
    for c in candidates:
        if (c / CHECKPOINT_FILE).is_file():
            return c
    return None


def _state(t: Trial, epochs_planned: float, epochs_done: float, diverged: bool) -> tuple[str, str]:
    """(state, reason) of a trial."""
    status = (t.ray_status or "").upper()
    if diverged:
        return DIVERGED, _last_str(t.history, "error") or f"loss not finite at epoch {epochs_done:g}"
    if last_value(t.history, "failed") == 1.0:  # the trial ended itself (a damaged checkpoint)
        return FAILED, _last_str(t.history, "error") or "the trial reported itself failed"
    finished = not math.isnan(epochs_planned) and epochs_done >= epochs_planned
    if finished and status != "ERROR":
        # error.txt of a crash that Ray retried from the checkpoint stays behind
        return COMPLETED, f"recovered after a crash ({t.error})" if t.error else ""
    if t.error or status == "ERROR":
        return FAILED, t.error or "Ray marked the trial ERROR (no error.txt)"
    if status == "TERMINATED" or (status == "" and _last_done(t.history)):
        return STOPPED, f"stopped by the scheduler at epoch {epochs_done:g}/{epochs_planned:g}"
    if status in ("RUNNING", "PAUSED"):
        return RUNNING, f"{status.lower()} at epoch {epochs_done:g}/{epochs_planned:g}"
    if t.history.empty:
        return PENDING, "no result reported yet"
    # Not (yet) in the experiment state: the search is running or died mid-trial.
    return RUNNING, f"no final status; last reported epoch {epochs_done:g}/{epochs_planned:g}"


def _damaged(t: Trial, read: float, planned: float, diverged: bool) -> str:
    """Why a trial's results cannot be taken as they stand ("" when they can): never read a
    damaged result.json as a trial that stopped early or completed with its last values."""
    status = (t.ray_status or "").upper()
    results = t.path / "result.json"
    fix = "restore the file from a backup or re-run the trial"
    ended = status in ("TERMINATED", "ERROR") or bool(t.row.get("status"))
    if t.cut_line and ended and not read >= planned:  # a cut line after the last epoch loses nothing
        return (f"{results} is cut off at line {t.cut_line}, after epoch {read:g}/{planned:g}, and no "
                f"checkpoint holds the later epochs: its final results are unknown; {fix}")
    claimed = to_float(t.row.get("epochs_trained", t.row.get("epochs")))
    if claimed > read:
        return (f"{RESULTS_JSON} says {claimed:g} epochs were trained, but {results} and the "
                f"checkpoints hold {read:g}: lines are missing; {fix}")
    corroborated = t.checkpoint_epoch is not None and t.checkpoint_epoch <= read
    if status == "TERMINATED" and not diverged and read < planned and not _last_done(t.history) \
            and not _stopped_flag(t) and not corroborated:
        return (f"{results} ends at epoch {read:g}/{planned:g} without Ray's stop marker (done), and "
                f"no checkpoint holds a later epoch: lines are missing; {fix}")
    return ""


def _last_str(history: pd.DataFrame, col: str) -> str:
    if col not in history:
        return ""
    s = history[col].dropna()
    return str(s.iloc[-1]) if len(s) else ""


def _last_done(history: pd.DataFrame) -> bool:
    # bool or numpy bool; NaN (a row without `done`) is not done
    return "done" in history and len(history) > 0 and str(history["done"].iloc[-1]) == "True"


def _reported(t: Trial, key: str):
    """A contract field (issue 12) as the trial reported it: its last result, else its
    results.json row, else its config; None when nobody wrote it."""
    if key in t.history:
        s = t.history[key].dropna()
        if len(s):
            return s.iloc[-1]
    for source in (t.row, t.config):
        if source.get(key) is not None:
            return source[key]
    return None


def _role(t: Trial, loss: str, with_mse: bool, w: float) -> str:
    """baseline | paper | search | seed | confirm: as written, else derived (a point of the
    paper's grid that the search ran is "paper")."""
    role = _reported(t, "role")
    if loss == "mse":
        return BASELINE
    if role in (None, SEARCH):  # a config's role: the experiment says what the trial was for
        if t.experiment.endswith(SEEDS_SUFFIX):
            return SEED
        if t.experiment.endswith(CONFIRM_SUFFIX):
            return CONFIRM
        if on_paper_grid(loss, with_mse, None if math.isnan(w) else w):
            return PAPER
    return str(role) if role in TRIAL_ROLES else SEARCH


def _epochs_trained(t: Trial) -> float:
    trained = to_float(_reported(t, "epochs_trained"))
    for col in ("epoch", "training_iteration"):
        if math.isnan(trained):
            trained = last_value(t.history, col)
    return 0.0 if math.isnan(trained) else trained


def _stopped_flag(t: Trial) -> bool | None:
    """The written `stopped` (or a results.json status STOPPED); None when not written."""
    flag = _reported(t, "stopped")
    if flag is None and t.row.get("status"):
        return t.row["status"] == "STOPPED"
    return None if flag is None else str(flag).lower() in ("true", "1", "1.0")


def trials_frame(trials: list[Trial]) -> pd.DataFrame:
    rows = []
    for t in trials:
        loss, _, with_mse, w = trial_settings(t.config)
        train = t.config.get("train") if isinstance(t.config.get("train"), dict) else {}
        h = t.history
        epochs_planned = to_float(train.get("epochs"))
        epochs_done = _epochs_trained(t)
        diverged = last_value(h, "diverged") == 1.0
        read = last_epoch(h)
        damage = _damaged(t, 0.0 if math.isnan(read) else read, epochs_planned, diverged)
        if damage:  # what was read is not the trial's result: no metrics
            state, reason, epochs_done, h = DAMAGED, damage, 0.0 if math.isnan(read) else read, h.iloc[:0]
        else:
            state, reason = _state(t, epochs_planned, epochs_done, diverged)
        if _stopped_flag(t) and state in (COMPLETED, RUNNING):  # the search said so
            state, reason = STOPPED, f"stopped by the scheduler at epoch {epochs_done:g}/{epochs_planned:g}"
        ckpt = _checkpoint(t) if not h.empty else None
        seed = to_float(_reported(t, "seed"))
        rows.append({
            "experiment": t.experiment, "trial": t.path.name,
            "trial_id": _last_str(t.history, "trial_id") or t.path.name,
            "loss": loss, "role": _role(t, loss, with_mse, w), "with_mse": with_mse, "w": w,
            "label": label(loss, with_mse, joint_weights(t.config) or w),
            **weight_params(loss, joint_weights(t.config) or ()),  # a joint loss's w1, w2
            "candidate": str(_reported(t, "candidate") or ""),
            "round": to_float(_reported(t, "round")),  # the sequential confirmation's (stats.race)
            "seed": seed if not math.isnan(seed) else to_float(train.get("seed", 0)),
            "holdout": to_float((train.get("data") or {}).get("holdout", 0)),
            "paper_grid": on_paper_grid(loss, with_mse, w),
            "state": state, "reason": reason, "stopped": state == STOPPED,
            "epochs": epochs_done, "epochs_planned": epochs_planned,
            **{k: last_value(h, k) for k in (*EVAL_METRICS, *HALF_METRICS, "kid_std", "test_kid_std")},
            "objective_reported": last_value(h, "objective"),
            "objective_name": str(t.config.get("objective", "")),
            "val_psnr": last_value(h, "val_psnr"), "val_ssim": last_value(h, "val_ssim"),
            "val_mse": last_value(h, "val_mse"), "val_recon": last_value(h, "val_recon"),
            "train_loss": last_value(h, "train_loss"),
            # The test split's scores at the last epoch (searches with --holdout only).
            **{k: last_value(h, k) for k in TEST_METRICS},
            "step_ms": _mean_after_first(h, "step_ms"),
            "recon_loss_ms": _mean_after_first(h, "recon_loss_ms"),
            "images_per_s": _mean_after_first(h, "images_per_s"),
            # Ray's clock, of the last result only: a result read from a checkpoint has none.
            "time_total_s": to_float(h["time_total_s"].iloc[-1]) if "time_total_s" in h and len(h)
            else math.nan,
            "checkpoint": str(ckpt) if ckpt else "",
            "notes": "; ".join(t.notes), "damage": "; ".join(t.damage), "path": str(t.path),
        })
    return pd.DataFrame(rows)


def saved_objective(experiments: list[Path]) -> str | None:
    """The objective the search resolved and saved in its search.json (one for all the
    experiments analysed), else None (a search from before it was saved)."""
    saved = set()
    for d in dict.fromkeys(e.parent for e in experiments):
        try:
            saved.add(json.loads((d / SETTINGS_FILE).read_text()).get("objective"))
        except (OSError, ValueError, AttributeError):
            continue
    saved.discard(None)
    return saved.pop() if len(saved) == 1 else None


def choose_objective(df: pd.DataFrame, requested: str | None, saved: str | None = None) -> str:
    """The objective column: `requested`, else the one the search saved (search.json), else
    the one its trials minimised (their config `objective`), else fid if any trial reported
    it, else swd."""
    if saved and not requested and saved in df and df[saved].notna().any():
        return saved
    if requested:
        objectives.get(requested)  # UserError naming the valid ones
        if requested not in df or not df[requested].notna().any():
            have = [c for c in EVAL_METRICS if c in df and df[c].notna().any()]
            raise UserError(f"--objective {requested}: no trial reported it; reported: "
                            f"{', '.join(have) or 'none'}")
        return requested
    named = [n for n in dict.fromkeys(df["objective_name"]) if n]
    if len(named) == 1 and named[0] in df and df[named[0]].notna().any():
        return named[0]  # what the search minimised
    for c in EVAL_METRICS:
        if c in df and df[c].notna().any():
            return c
    raise UserError("no trial reported fid or swd yet; wait for the first evaluation "
                    "(eval_every epochs) or check the trials' error.txt")


def _with_baseline(exps: list[Path], trials: list[Trial]) -> list[Path]:
    """A loss experiment named alone: add its search's baseline/ experiment (the reference)."""
    if any(trial_settings(t.config)[0] == "mse" for t in trials):
        return []
    extra = []
    for parent in dict.fromkeys(e.parent for e in exps):
        b = parent / BASELINE_EXPERIMENT
        if b.is_dir() and b.resolve() not in exps and is_experiment(b):
            extra.append(b.resolve())
    return extra


def _results_rows(search_dir: Path) -> dict[str, dict]:
    """trial_id -> the search's results.json row (role, status, seed), where one was written."""
    doc = read_json(search_dir / RESULTS_JSON)
    rows = doc.get("trials") if isinstance(doc, dict) else None
    return {str(r["trial_id"]): r for r in rows or [] if isinstance(r, dict) and r.get("trial_id")}


def _attach_rows(trials: list[Trial]) -> None:
    rows: dict[Path, dict] = {}
    for t in trials:
        search_dir = t.path.parent.parent
        if search_dir not in rows:
            rows[search_dir] = _results_rows(search_dir)
        trial_id = _last_str(t.history, "trial_id") or t.path.name.split("_")[0]
        t.row = rows[search_dir].get(trial_id, {})


def _failed_because(failed: list[tuple[str, Path]]) -> str:
    """"REASON (k trials; see DIR/error.txt)" of the commonest error, and how many others."""
    counts = Counter(reason for reason, _ in failed)
    reason, k = counts.most_common(1)[0]
    where = next(path for r, path in failed if r == reason)
    text = f"{reason} ({k} trial{'s' if k > 1 else ''}; see {where})"
    if len(counts) > 1:
        text += f", and {len(counts) - 1} other error(s) (see each trial's error.txt)"
    return text


def warnings_of(df: pd.DataFrame) -> list[str]:
    """What the analysis must say before any table: every damaged file, and an experiment
    whose every trial failed (with why)."""
    out = [r["reason"] if r["state"] == DAMAGED else r["damage"] for _, r in df.iterrows()
           if r["state"] == DAMAGED or r.get("damage")]
    if len(df) and df["state"].isin([FAILED, DIVERGED, DAMAGED]).all():
        failed = [(r["reason"], Path(r["path"]) / "error.txt") for _, r in df.iterrows()
                  if r["state"] == FAILED]
        out.append(f"every trial failed ({len(df)} of {len(df)})"
                   + (f": {_failed_because(failed)}" if failed else "; see the failures table"))
    return out


def load(paths: list[str]) -> tuple[list[Path], pd.DataFrame]:
    exps = find_experiments(paths)
    trials = [t for d in exps for t in read_experiment(d)]
    names = ", ".join(e.name for e in exps)
    if not trials:
        raise UserError(f"{names}: no trials yet (half-written experiment); wait for the "
                        f"search to start its trials")
    if not any(len(t.history) for t in trials):
        failed = [(t.error or "Ray marked the trial ERROR", t.path / "error.txt") for t in trials
                  if t.error or (t.ray_status or "").upper() == "ERROR"]
        if failed and len(failed) == len(trials):
            raise UserError(f"{names}: every trial failed ({len(trials)} of {len(trials)}) before "
                            f"reporting a result: {_failed_because(failed)}; fix the cause and "
                            f"run the search again")
        more = f"; {len(failed)} failed already: {_failed_because(failed)}" if failed else ""
        raise UserError(f"{names}: no trial has reported a result yet (half-written "
                        f"experiment); run the analysis again after the first epoch{more}")
    for b in _with_baseline(exps, trials):
        exps.append(b)
        trials += read_experiment(b)
    _attach_rows(trials)
    return exps, trials_frame(trials)
