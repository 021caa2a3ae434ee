"""`python -m tune_vqvae.bench load`: the search under load, checked for lost or doubled work.

N `--mock` searches at once (default two of 200 trials, 8 running at a time, each its own
driver process with its own local Ray) write into one storage path. Afterwards, for each:

- every trial once in results.csv (and its directory in the experiment once), all COMPLETED;
- every epoch once in what `python -m analysis` reads;
- the Optuna journal consistent with the results: one COMPLETE trial per Ray trial, with the
  same value, none left RUNNING/WAITING, no trial of the other search;
- the driver's peak memory (ru_maxrss of the driver process, Ray's own processes excluded),
  wall time (from the start of all searches to this one's exit, Ray's start and stop
  included), the search's own time (its "N trials in X s" line) and trials per second.

Writes <out-dir>/cpu-<date>-load.json; exits 1 if an invariant fails. No Ray import here: the
searches run as subprocesses (`python -m tune_vqvae.search`), each in a session of its own
that is stopped by its id afterwards.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import UserError, atomic_write_text, cli_entry
from ..sessions import kill_session
from ..vocab import JOURNAL_FILE, RESULTS_CSV

LOSS = "gmsd"
# The driver under a wrapper that records its peak resident memory when it exits.
DRIVER = """
import json, resource, runpy, sys
out = sys.argv.pop(1)
try:
    runpy.run_module("tune_vqvae.search", run_name="__main__", alter_sys=True)
finally:
    with open(out, "w") as f:
        json.dump({"ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, f)
"""


def start_search(name: str, storage: Path, trials: int, concurrent: int, epochs: int, work: Path,
                 seed: int) -> tuple[subprocess.Popen, Path, Path]:
    ray_tmp = tempfile.mkdtemp(prefix="rl", dir="/tmp")  # short: Ray's socket paths must fit
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": ray_tmp}
    rss, log = work / f"{name}.rss.json", work / f"{name}.log"
    argv = [sys.executable, "-c", DRIVER, str(rss), "--mock", "--loss", LOSS, "--epochs", str(epochs),
            "--num-samples", str(trials), "--max-concurrent", str(concurrent), "--num-cpus", str(concurrent),
            "--no-early-stop", "--baseline-seeds", "1", "--confirm-seeds", "0", "--seed", str(seed),
            "--storage-path", str(storage), "--name", name]
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proc.ray_tmp = ray_tmp
    return proc, rss, log


def _reported_epochs(trial: Path) -> list[int]:
    """The epochs a trial directory's result.json holds, in order (one line per report)."""
    lines = (trial / "result.json").read_text().splitlines()
    return [int(json.loads(line)["epoch"]) for line in lines if line.strip()]


def check_search(exp: Path, trials: int, epochs: int) -> dict:
    """The invariants of one finished search -> figures and failures (a list of strings)."""
    import optuna
    import pandas as pd
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    failures = []
    rows = pd.read_csv(exp / RESULTS_CSV)
    loss_rows = rows[rows.experiment == LOSS]
    if len(loss_rows) != trials:
        failures.append(f"{len(loss_rows)} {LOSS} rows in {RESULTS_CSV}, expected {trials}")
    if not rows.trial_id.is_unique:
        failures.append(f"trials twice in {RESULTS_CSV}: {sorted(rows.trial_id[rows.trial_id.duplicated()])}")
    if set(rows.status) != {"COMPLETED"}:
        failures.append(f"statuses {rows.status.value_counts().to_dict()}")
    dirs = [d for d in (exp / LOSS).iterdir() if d.is_dir()]
    dir_ids = [d.name.rsplit("_", 1)[0] for d in dirs]
    if sorted(dir_ids) != sorted(loss_rows.trial_id):
        failures.append(f"{len(dirs)} trial directories vs {len(loss_rows)} rows")
    bad_epochs = [t.name for e in ("baseline", LOSS) for t in (exp / e).iterdir()
                  if (t / "result.json").is_file() and _reported_epochs(t) != list(range(1, epochs + 1))]
    if bad_epochs:
        failures.append(f"trials without every epoch exactly once: {bad_epochs[:5]}")

    journal = JournalStorage(JournalFileBackend(str(exp / JOURNAL_FILE)))
    study = optuna.load_study(study_name=LOSS, storage=journal)
    states = optuna.trial.TrialState
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    by_id = {}
    for t in complete:
        by_id.setdefault(t.user_attrs.get("ray_trial_id"), []).append(t)
    if len(complete) != len(loss_rows) or set(by_id) != set(loss_rows.trial_id):
        failures.append(f"journal: {len(complete)} COMPLETE trials for {len(loss_rows)} rows")
    if [k for k, v in by_id.items() if len(v) > 1]:
        failures.append("journal: a Ray trial told twice")
    values = dict(zip(loss_rows.trial_id, loss_rows.value))
    off = [k for k, (t, *_) in by_id.items() if k in values and not math.isclose(t.value, values[k])]
    if off:
        failures.append(f"journal values differ from the results for {off[:5]}")
    dangling = [t.number for t in study.trials if t.state in (states.RUNNING, states.WAITING)]
    if dangling:
        failures.append(f"journal: trials left RUNNING/WAITING: {dangling[:5]}")
    return {"rows": int(len(rows)), "loss_trials": int(len(loss_rows)), "trial_dirs": len(dirs),
            "journal_trials": len(study.trials), "journal_complete": len(complete),
            "journal_states": {s.name: sum(t.state == s for t in study.trials)
                               for s in states if any(t.state == s for t in study.trials)},
            "ray_trial_ids": sorted(by_id), "failures": failures}


def run_load(storage: Path, trials: int = 200, concurrent: int = 8, searches: int = 2, epochs: int = 2,
             timeout_s: float = 3600) -> dict:
    """Run `searches` mock searches at once into `storage`; their figures and invariants."""
    storage = Path(storage)
    storage.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="load-", dir=storage))
    names = [f"load{k}" for k in range(searches)]
    started = time.perf_counter()
    procs = {n: start_search(n, storage, trials, concurrent, epochs, work, seed=k)
             for k, n in enumerate(names)}
    out, ended = {}, {}
    try:
        deadline = time.time() + timeout_s
        while len(ended) < len(procs) and time.time() < deadline:
            for name, (proc, _, _) in procs.items():
                if name not in ended and proc.poll() is not None:
                    ended[name] = time.perf_counter() - started
            time.sleep(0.5)
        for name, (proc, rss, log) in procs.items():
            if name not in ended:
                out[name] = {"error": f"no end after {timeout_s:.0f} s", "log_tail": log.read_text()[-3000:]}
            elif proc.returncode != 0:
                out[name] = {"error": f"exit {proc.returncode}", "log_tail": log.read_text()[-3000:]}
            else:
                figures = check_search(storage / name, trials, epochs)
                peak = json.loads(rss.read_text())["ru_maxrss_kib"] / 1024
                said = re.search(r"^(\d+) trials in (\d+) s;", log.read_text(), re.M)  # the driver's timer
                search_s = int(said.group(2)) if said else None
                out[name] = {"wall_s": round(ended[name], 1), "search_s": search_s,
                             "driver_peak_rss_mib": round(peak, 1),
                             "trials_per_s": round((trials + 1) / (search_s or ended[name]), 3), **figures}
    finally:
        for proc, _, _ in procs.values():
            kill_session(proc.pid)
            shutil.rmtree(proc.ray_tmp, ignore_errors=True)
    ids = [set(r.get("ray_trial_ids", [])) for r in out.values()]
    shared = set.intersection(*ids) if len(ids) > 1 else set()
    failures = {n: r.get("failures") or ([r["error"]] if "error" in r else []) for n, r in out.items()}
    if shared:
        failures["all"] = [f"trials in more than one search's journal: {sorted(shared)[:5]}"]
    for r in out.values():
        r.pop("ray_trial_ids", None)
    return {"searches": out, "ok": not any(failures.values()), "failures": failures,
            "total_wall_s": round(time.perf_counter() - started, 1)}


@cli_entry
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tune_vqvae.bench load", description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=200, help="trials per search (default 200)")
    p.add_argument("--concurrent", type=int, default=8, help="running trials per search (default 8)")
    p.add_argument("--searches", type=int, default=2, help="searches at once (default 2)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per trial (default 2)")
    p.add_argument("--storage-path", help="the one storage path (default: a temp dir, removed after)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds before giving up (default 3600)")
    p.add_argument("--out-dir", default="benchmarks/results")
    a = p.parse_args(argv)
    for flag in ("trials", "concurrent", "searches", "epochs"):
        if getattr(a, flag) < 1:
            raise UserError(f"--{flag} must be >= 1, got {getattr(a, flag)}")
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        result = run_load(Path(a.storage_path or tmp), a.trials, a.concurrent, a.searches, a.epochs,
                          a.timeout)
    from importlib.metadata import version

    result = {"environment": {"device": "cpu", "cpu_count": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
                              "python": platform.python_version(), "ray": version("ray"),
                              "optuna": version("optuna")},
              "settings": vars(a), **result}
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"cpu-{result['environment']['date']}-load.json"
    atomic_write_text(path, json.dumps(result, indent=2))
    for name, r in result["searches"].items():
        figures = {k: v for k, v in r.items() if k not in ("failures", "log_tail")}
        print(f"{name}: {figures}")
    print(f"{'all invariants hold' if result['ok'] else 'FAILED: ' + json.dumps(result['failures'])}")
    print(f"wrote {path}")
    return 0 if result["ok"] else 1
