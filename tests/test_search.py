"""The search service end to end with the mock trainable (no training): Optuna via Ray Tune,
the paper points and the baseline, ASHA, results files, resume, faults, bad input, two nodes."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters
import ray  # noqa: E402
from processes import free_port, run, search_env, study  # noqa: E402
from waiting import Lines, wait_until  # noqa: E402

from tune_vqvae.stats import equivalence  # noqa: E402
from tune_vqvae.testing import MOCK_BEST_W, MOCK_TEST_FACTOR, mock_test_objective  # noqa: E402
from tune_vqvae.vocab import JOURNAL_FILE, search_seed  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


def finished(lines: list[str]) -> set[str]:
    """Trial ids of the [gmsd] progress lines at the last epoch (of 3)."""
    return {s.split()[1] for s in lines if s.startswith("[gmsd]") and "epoch 3/3" in s}


def sigint_as_at_a_terminal() -> None:
    """In the child before exec: SIGINT at its default. A process started with `&` from a
    non-interactive shell (a CI script) inherits SIGINT ignored, and Python then never turns
    it into KeyboardInterrupt: the search would ignore the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def completed_in_journal(exp: Path, name: str) -> set[str]:
    """Ray trial ids of the study's COMPLETE trials (the journal may be half-written: none yet)."""
    if not (exp / JOURNAL_FILE).exists():
        return set()
    try:
        trials = study(exp, name).trials
    except (KeyError, ValueError):  # the study is not created yet, or a line is being written
        return set()
    return {t.user_attrs.get("ray_trial_id") for t in trials if t.state == optuna.trial.TrialState.COMPLETE}


def load_results(exp: Path):
    rows = pd.read_csv(exp / "results.csv")
    doc = json.loads((exp / "results.json").read_text())
    return rows, doc


# --- the search -------------------------------------------------------------------------


@pytest.mark.slow
def test_mock_search_finds_best_w_and_measures_paper_points(ray_cluster, tmp_path, capsys):
    rc = run(["--mock", "--loss", "gmsd", "--epochs", "3", "--num-samples", "14",
              "--max-concurrent", "2", "--early-stop", "--grace-period", "1", "--confirm-seeds", "3",
              "--storage-path", str(tmp_path), "--name", "exp"])
    assert rc == 0
    exp = tmp_path / "exp"
    rows, doc = load_results(exp)
    out = capsys.readouterr().out

    # the baseline with its 3 seeds, the four paper points, the rest searched, then the
    # confirmation runs of the candidates (fresh seeds)
    base = rows[(rows.role == "baseline") & (rows.experiment == "baseline")]
    assert sorted(base.seed) == [0, 1, 2] and set(base.status) == {"COMPLETED"}
    assert base.iloc[0].value == pytest.approx(1.0)  # seed 0
    paper = rows[rows.role == "paper"]
    assert sorted(paper.w.fillna(-1)) == [-1, 0.25, 0.5, 1.0]
    assert set(paper.status) == {"COMPLETED"}  # protected from ASHA: all epochs
    assert (paper.epochs == 3).all()
    assert rows.role.isin(["paper", "search"]).sum() == 14
    confirm = rows[rows.role == "confirm"]
    assert set(confirm.seed) == {1000, 1001, 1002} and set(confirm.experiment) == {"gmsd-confirm"}
    base_confirm = rows[rows.experiment == "baseline-confirm"]  # the baseline on the same seeds
    assert set(base_confirm.role) == {"baseline"} and sorted(base_confirm.seed) == [1000, 1001, 1002]

    # the GP finds the known optimum w* = 2 of the mock (to within 25%)
    best = doc["best"]["gmsd"]["best"]
    assert best["with_mse"] is True
    assert abs(math.log10(best["w"] / MOCK_BEST_W["gmsd"])) < 0.1
    gain = doc["best"]["gmsd"]["gain_vs_baseline"]
    assert gain["percent"] > 70  # mock: 0.2 at w* vs 1.0 for the baseline
    assert doc["best"]["gmsd"]["gain_vs_paper"]["absolute"] > 0
    assert doc["best"]["gmsd"]["best_paper_point"]["w"] == 1.0

    # ASHA stopped hopeless trials early; the no-MSE arm was measured once
    assert (rows.status == "STOPPED").any()
    assert (rows.with_mse == False).sum() == 1  # noqa: E712

    # the table and the best line were printed
    assert "gmsd: best w=" in out and "vs MSE baseline" in out and "paper" in out

    # the Optuna study persisted in the experiment dir, paper points first
    s = study(exp, "gmsd")
    assert len(s.trials) == 14
    first = [t.params for t in s.trials[:4]]
    assert {"with_mse": False} in first and {"with_mse": True, "w": 0.25} in first
    assert all("ray_trial_id" in t.user_attrs for t in s.trials)

    # every trial wrote TensorBoard events and checkpoints into its directory
    for path in rows.path:
        files = os.listdir(path)
        assert any(f.startswith("events.out.tfevents") for f in files), path
        assert any(f.startswith("checkpoint_") for f in files), path

    # a finished experiment is never overwritten
    assert run(["--mock", "--loss", "gmsd", "--storage-path", str(tmp_path), "--name", "exp"]) == 2
    assert "already holds a search" in capsys.readouterr().err


@pytest.mark.slow
def test_realistic_mock_replicates_pruned_stops_and_verdicts_from_confirmation(ray_cluster, tmp_path, capsys):
    """The realistic noise model (3.5% per run): every w runs with 2 seeds, stopped trials are
    PRUNED in the journal (never COMPLETE with an early value), the baseline has 3 seeds,
    the candidates are confirmed with fresh seeds, and results.json carries the answer."""
    rc = run(["--mock", "--mock-curve", "realistic", "--loss", "gmsd", "--epochs", "3",
              "--num-samples", "10", "--replicates", "2", "--early-stop", "--grace-period", "1",
              "--max-concurrent", "2",
              "--confirm-seeds", "2", "--storage-path", str(tmp_path), "--name", "real"])
    assert rc == 0
    exp = tmp_path / "real"
    rows, doc = load_results(exp)
    out = capsys.readouterr().out
    for column in ("seed", "role", "epochs_trained", "stopped", "value", "objective", "candidate",
                   "replicate"):
        assert column in rows, column
    base = rows[rows.role == "baseline"]  # its own seeds and the confirmation's
    assert sorted(base.seed) == [0, 1, 2, 1000, 1001] and base.value.nunique() == 5  # noisy, reproducible
    searched = rows[rows.role.isin(["paper", "search"])]
    # every trial its own seed (vocab.search_seed: --seed + 500 + its trial number), replicates too
    assert len(searched) == 10 and sorted(searched.seed) == list(range(500, 510))
    assert set(searched.replicate) == {0, 1} and (searched.stopped == (searched.status == "STOPPED")).all()
    journal = {t.number: t for t in study(exp, "gmsd").trials}
    for t in journal.values():  # a replicate: an earlier proposal's w, on a seed of its own
        k = t.user_attrs["replicate"]
        assert t.user_attrs["seed"] == search_seed(0, t.number) and k in (0, 1)
        assert k == 0 or any(o.user_attrs["replicate"] == 0 and o.params == t.params
                             for o in journal.values() if o.number < t.number)
    assert sum(t.user_attrs["replicate"] == 1 for t in journal.values()) >= 4  # proposals replicated

    # fidelity: the journal agrees with the rows; a stopped trial is PRUNED, its early value unscored
    by_id = {t.user_attrs["ray_trial_id"]: t for t in study(exp, "gmsd").trials}
    assert (searched.status == "STOPPED").any()
    for _, r in searched.iterrows():
        t = by_id[r.trial_id]
        assert t.user_attrs["seed"] == r.seed
        if r.status == "STOPPED":
            assert t.state == optuna.trial.TrialState.PRUNED and r.epochs_trained < 3
            assert t.intermediate_values[max(t.intermediate_values)] == pytest.approx(r.value)
        else:
            assert t.state == optuna.trial.TrialState.COMPLETE and t.value == pytest.approx(r.value)

    confirm = rows[rows.role == "confirm"]
    assert set(confirm.seed) == {1000, 1001} and set(confirm.status) == {"COMPLETED"}
    assert confirm.candidate.str.contains("recommended").any()
    answer = doc["answer"]
    assert answer["baseline"]["n"] == 5 and 0 < answer["baseline"]["cv"] < 0.2
    # the noise budget: the mock scores its last evaluation on two halves with a 2% error each
    budget = answer["baseline"]["noise_budget"]
    assert budget["runs"] == 5 and budget["n_eval"] == 1000 and 0 < budget["eval"] < budget["total"]
    low, high = budget["eval_share_interval95"]
    assert 0 <= low <= high <= 1
    assert "noise budget: " in out
    gmsd = answer["losses"]["gmsd"]
    assert gmsd["surrogate"]["fitted"] and len(gmsd["surrogate"]["mean"]) == len(gmsd["surrogate"]["log10_w"])
    seeds = gmsd["surrogate"]["seeds"]
    assert seeds == sorted(seeds) and min(seeds) >= 500
    assert "full-length runs, each at its own seed;" in out
    verdict = gmsd["comparisons"]["recommended_vs_baseline"]
    assert verdict["verdict"] in equivalence.VERDICTS and verdict["n_candidate"] == 2
    assert verdict["min_effect"] == 5.0 and verdict["largest_gain"] == pytest.approx(-verdict["percent_low"])
    assert verdict["pairs"] == 2 and verdict["method"] == "paired-t"  # same-seed runs of the baseline
    assert verdict["low"] <= verdict["diff"] <= verdict["high"]
    assert "gmsd: recommended w=" in out and "vs MSE baseline: " in out and "run-to-run noise" in out


@pytest.mark.slow
def test_paper_grid_two_losses_concurrently_selected_on_a_holdout(ray_cluster, tmp_path, capsys):
    rc = run(["--mock", "--space", str(REPO / "search_spaces/paper_grid.yaml"), "--loss", "gmsd",
              "--loss", "ssim", "--epochs", "2", "--storage-path", str(tmp_path), "--name", "grid",
              "--holdout", "100", "--baseline-seeds", "1", "--confirm-seeds", "0"])
    assert rc == 0
    exp = tmp_path / "grid"
    rows, doc = load_results(exp)
    assert len(rows) == 2 * 4 + 1
    for loss in ("gmsd", "ssim"):
        mine = rows[rows.experiment == loss]
        assert len(mine) == 4 and set(mine.role) == {"paper"} and set(mine.status) == {"COMPLETED"}
        assert len(study(exp, loss).trials) == 4  # its own Optuna study
        assert doc["best"][loss]["gain_vs_baseline"] is not None
    assert (exp / "baseline").is_dir() and (exp / "gmsd").is_dir() and (exp / "ssim").is_dir()
    # --holdout: every trial also has its test score, and the winner is reported on test too.
    # The mock's test split ranks the weights differently (its best w is 0.5, the held-out
    # images' 1): the winner is the held-out argmin, reported with its test score.
    assert rows.test_value.notna().all() and (rows.test_value == rows.test_swd).all()
    gmsd = rows[(rows.experiment == "gmsd") & rows.with_mse]
    assert gmsd.loc[gmsd.value.idxmin()].w == 1.0 and gmsd.loc[gmsd.test_value.idxmin()].w == 0.5
    best = doc["best"]["gmsd"]
    assert best["best"]["w"] == 1.0
    seed = int(gmsd.loc[gmsd.value.idxmin()].seed)  # its own (vocab.search_seed): the mock's seed noise
    assert best["best"]["test_value"] == pytest.approx(
        mock_test_objective({"loss": "gmsd", "with_mse": True, "w": 1.0, "train": {"seed": seed}}))
    assert best["gain_vs_baseline_test"]["reference"] == pytest.approx(MOCK_TEST_FACTOR * best["baseline"])
    assert "on test: test_swd" in capsys.readouterr().out


@pytest.mark.slow
def test_crash_is_retried_from_checkpoint_and_nan_fails_the_trial(ray_cluster, tmp_path):
    faults = [
        {"crash_at_epoch": 2, "only_w": 0.5, "marker_dir": str(tmp_path / "markers")},
        {"nan_at_epoch": 2, "only_w": 0.25},
    ]
    rc = run(["--mock", "--loss", "gmsd", "--epochs", "3", "--num-samples", "4",
              "--no-early-stop", "--max-failures", "1", "--storage-path", str(tmp_path),
              "--name", "faults", "--faults", json.dumps(faults), "--confirm-seeds", "0"])
    assert rc == 0
    exp = tmp_path / "faults"
    rows, _ = load_results(exp)
    crashed = rows[rows.w == 0.5].iloc[0]
    assert crashed.status == "COMPLETED"
    assert (tmp_path / "markers").is_dir() and len(os.listdir(tmp_path / "markers")) == 1
    progress = pd.read_csv(Path(crashed.path) / "progress.csv")
    assert list(progress.epoch) == [1, 2, 3]  # every epoch exactly once
    assert progress.objective.iloc[-1] == pytest.approx(crashed.value)

    diverged = rows[rows.w == 0.25].iloc[0]
    assert diverged.status == "DIVERGED" and diverged.epochs == 2
    assert "diverged at epoch 2" in diverged.error
    states = {t.params.get("w"): t.state for t in study(exp, "gmsd").trials}
    assert states[0.25] == optuna.trial.TrialState.FAIL
    assert states[1.0] == optuna.trial.TrialState.COMPLETE


@pytest.mark.slow
def test_a_damaged_trial_checkpoint_fails_the_trial_once_in_one_line(ray_cluster, tmp_path, capsys):
    """w = 0.25 writes a damaged checkpoint at epoch 1, then crashes at epoch 2: its retry cannot
    read the checkpoint, so the trial ends FAILED at once (one line, not --max-failures retries
    from the same file with a traceback each), ERROR in the results, FAIL in Optuna."""
    faults = [{"damage_checkpoint_at_epoch": 1, "crash_at_epoch": 2, "only_w": 0.25,
               "marker_dir": str(tmp_path / "markers")}]
    rc = run(["--mock", "--loss", "gmsd", "--epochs", "3", "--num-samples", "4", "--no-early-stop",
              "--max-failures", "3", "--storage-path", str(tmp_path), "--name", "damaged",
              "--faults", json.dumps(faults), "--confirm-seeds", "0"])
    assert rc == 0
    exp = tmp_path / "damaged"
    rows, _ = load_results(exp)
    bad = rows[rows.w == 0.25].iloc[0]
    assert bad.status == "ERROR" and "cannot resume from the trial's checkpoint" in bad.error
    assert set(rows[rows.w != 0.25].status) == {"COMPLETED"}
    out = capsys.readouterr().out
    assert out.count("FAILED: cannot resume from the trial's checkpoint") == 1
    snap = json.loads(sorted((exp / "gmsd").glob("experiment_state-*.json"))[-1].read_text())
    failures = [json.loads(run_meta).get("num_failures", 0) for meta, run_meta in snap["trial_data"]
                if json.loads(meta)["config"].get("w") == 0.25]
    assert failures == [1]  # the injected crash only: the damaged file was not retried
    states = {t.params.get("w"): t.state for t in study(exp, "gmsd").trials}
    assert states[0.25] == optuna.trial.TrialState.FAIL

    from analysis.load import FAILED, load

    _, frame = load([str(exp)])
    assert list(frame[frame.w == 0.25].state) == [FAILED]


@pytest.mark.slow
def test_resume_after_interrupt_does_not_rerun_completed_trials(tmp_path):
    """SIGINT the search mid-run (its own local Ray), then --resume finishes it. The third
    trial (w = 0.25) is held at its first epoch until the search has taken the SIGINT, so the
    search cannot finish first however slow the machine."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    hold = tmp_path / "hold"
    hold.touch()
    faults = [{"sleep_s": 0.7}, {"pause_while": str(hold), "only_w": 0.25}]
    argv = [PY, "-m", "tune_vqvae.search", "--mock", "--loss", "gmsd", "--epochs", "3",
            "--num-samples", "6", "--max-concurrent", "1", "--no-early-stop", "--num-cpus", "2",
            "--storage-path", str(tmp_path), "--name", "r", "--confirm-seeds", "0",
            "--faults", json.dumps(faults)]
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=sigint_as_at_a_terminal)
    output = Lines(proc.stdout)
    exp = tmp_path / "r"
    try:
        done_before = finished(output.wait_for(lambda lines: len(finished(lines)) >= 2, 240,
                                               "two loss trials at epoch 3/3"))  # a third held
        # Tune has processed their end once the searcher told Optuna (then they are TERMINATED
        # in the state Ctrl-C saves; a trial "running" at the Ctrl-C redoes its last epoch).
        wait_until(lambda: done_before <= completed_in_journal(exp, "gmsd"), 60,
                   "the finished trials COMPLETE in the Optuna journal")
        proc.send_signal(signal.SIGINT)
        output.wait_for(lambda lines: any(s.startswith("interrupted:") for s in lines), 60,
                        "the search's 'interrupted:' line")
        # Tune stops a trial at its next report: the held one must reach it
        hold.unlink()
        proc.wait(timeout=60)
    finally:
        hold.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        seen = output.close().splitlines(keepends=True)
    assert proc.returncode == 130, "".join(seen)
    assert not (exp / "results.csv").exists()
    assert len(done_before) >= 2

    out = subprocess.run([PY, "-m", "tune_vqvae.search", "--resume", str(exp), "--num-cpus", "2"],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    rows, _ = load_results(exp)
    loss_rows = rows[rows.experiment == "gmsd"]
    assert len(loss_rows) == 6 and loss_rows.trial_id.is_unique
    assert set(loss_rows.status) == {"COMPLETED"}
    for trial_id in done_before:  # not re-run: no epoch lines for them after resuming
        assert f" {trial_id} " not in out.stdout
        assert trial_id in set(loss_rows.trial_id)
    for path in loss_rows.path:
        assert list(pd.read_csv(Path(path) / "progress.csv").epoch) == [1, 2, 3]
    assert len(study(exp, "gmsd").trials) >= 6


def test_trial_workers_get_the_search_environment(tmp_path):
    """What a search's workers need from the driver's command line (--lpips-weights) reaches
    them through Ray's runtime_env; the driver's own environment does not hold the probe."""
    code = ("import os, ray; from tune_vqvae.search import _cluster; "
            "assert _cluster.connect(None, 1, {'TUNE_VQVAE_PROBE': 'from-driver'}); "
            "print(ray.get(ray.remote(lambda: os.environ.get('TUNE_VQVAE_PROBE')).remote())); "
            "ray.shutdown()")
    ray_tmp = tempfile.mkdtemp(prefix="rw", dir="/tmp")  # short: Ray's socket paths must fit
    try:
        out = subprocess.run([PY, "-c", code], env=search_env(ray_tmp), cwd=REPO, capture_output=True,
                             text=True, timeout=180)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "from-driver"


# --- bad input: exit 2, one line, before any trial --------------------------------------


def bad_cases(tmp_path):
    bad_range = tmp_path / "bad_range.yaml"
    bad_range.write_text("losses: [gmsd]\nw: {low: 5, high: 1}\n")
    bad_key = tmp_path / "bad_key.yaml"
    bad_key.write_text("losses: [gmsd]\nw: {low: 0.01, high: 1}\nsampler: tpe\n")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    not_exp = tmp_path / "not_an_experiment"
    not_exp.mkdir()
    junk_weights = tmp_path / "weights.pth"
    junk_weights.write_bytes(bytes(range(256)) * 4)  # any 1 KB file
    s = str(tmp_path / "out")
    small = tmp_path / "small.npz"  # 8x8: a multiple of 4, too small for SSIM's 11-pixel window
    np.savez(small, x_train=np.zeros((8, 8, 8, 3), np.uint8), x_test=np.zeros((4, 8, 8, 3), np.uint8))
    return [
        (["--loss", "ssim", "--data", str(small), "--objective", "swd", "--storage-path", s],
         "small are 8x8, too small for --loss ssim: it needs at least 11x11"),
        (["--loss", "fancy", "--storage-path", s], "unknown loss 'fancy'"),
        (["--loss", "mse", "--storage-path", s], "baseline runs in every search"),
        (["--loss", "gmsd", "--mock", "--num-samples", "401", "--storage-path", s],
         "--num-samples must be <= 400"),  # search seeds would reach the confirmation's
        (["--loss", "gmsd", "--space", str(bad_range), "--storage-path", s], "must be < high"),
        (["--loss", "gmsd", "--space", str(bad_key), "--storage-path", s], "'sampler': unknown key"),
        (["--loss", "gmsd", "--data", str(tmp_path / "missing.npz"), "--objective", "swd",
          "--storage-path", s], "does not exist"),
        (["--loss", "gmsd", "--storage-path", s], "FID needs the Inception weights file"),
        (["--loss", "gmsd", "--objective", "kid", "--storage-path", s],
         "KID needs the Inception weights file"),
        (["--loss", "gmsd", "--storage-path", str(a_file / "sub"), "--mock"], "not writable"),
        (["--resume", str(not_exp)], "is not a search experiment"),
        (["--loss", "gmsd", "--mock", "--address", "127.0.0.1:1", "--storage-path", s],
         "cannot reach the Ray cluster"),
        (["--loss", "gmsd", "--mock", "--epochs", "2", "--early-stop", "--grace-period", "2",
          "--storage-path", s], "--grace-period 2 must be < --epochs 2"),
        (["--loss", "gmsd", "--mock", "--grace-period", "2", "--storage-path", s], "add --early-stop"),
        (["--loss", "gmsd", "--mock", "--objective", "beauty", "--storage-path", s],
         "unknown --objective"),
        (["--loss", "gmsd", "--mock", "--num-samples", "2", "--storage-path", s],
         "fewer than the 4 points"),
        (["--mock", "--storage-path", s], "no loss to search"),
        (["--loss", "gmsd", "--mock", "--holdout", "1", "--storage-path", s], "--holdout must be 0"),
        (["--loss", "gmsd", "--mock", "--confirm-seeds", "1", "--storage-path", s],
         "--confirm-seeds 1: one run per candidate and one baseline run on its seed give no interval"),
        (["--loss", "gmsd", "--mock", "--confirm-budget", "5", "--storage-path", s],
         "give --confirm-budget 6 or more"),
        (["--loss", "gmsd", "--mock", "--confirm-budget", "16", "--confirm-seeds", "3", "--storage-path", s],
         "--confirm-budget replaces --confirm-seeds"),
        (["--loss", "gmsd", "--mock", "--confirm-budget", "500", "--storage-path", s],
         "allows more than 50 rounds"),
        (["--loss", "gmsd", "--mock", "--confirm-budget", "8", "--race-baseline-runs", "2",
          "--storage-path", s],
         "3 rounds of the MSE baseline (2 runs a round) and each loss's recommended w need at least 9"),
        (["--loss", "gmsd", "--mock", "--confirm-seeds", "3", "--race-baseline-runs", "2",
          "--storage-path", s], "this search has the fixed stage (--confirm-seeds N"),
        (["--loss", "gmsd", "--mock", "--confirm-budget", "20", "--race-baseline-runs", "two",
          "--storage-path", s], "--race-baseline-runs must be a whole number"),
        (["--loss", "gmsd", "--mock", "--confirm-budget", "20", "--race-baseline-runs", "0",
          "--storage-path", s], "--race-baseline-runs must be >= 1"),
        (["--loss", "gmsd", "--objective", "swd", "--holdout", "20000", "--storage-path", s],
         "--holdout 20000 leaves no training images"),
        (["--loss", "gmsd", "--fid-weights", str(tmp_path / "none.pth"), "--storage-path", s],
         "is not a file"),
        (["--loss", "gmsd", "--fid-weights", str(junk_weights), "--storage-path", s],
         "is not a PyTorch weights file"),
        (["--loss", "gmsd", "--mock", "--constraint", "val_psnr <= -0.2", "--storage-path", s],
         "so a budget bounds it with >=, not <="),
        (["--loss", "gmsd", "--mock", "--constraint", "beauty >= 1", "--storage-path", s],
         "unknown metric 'beauty'"),
        (["--loss", "lpips", "--mock", "--lpips-weights", str(tmp_path / "none"), "--storage-path", s],
         "(--lpips-weights)"),
    ]


def test_bad_input_exits_2_with_one_line_before_any_trial(tmp_path, capsys):
    ray_was_up = ray.is_initialized()  # (the module's cluster, if an earlier test started it)
    for argv, words in bad_cases(tmp_path):
        assert run(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], (argv, err)
        assert ray.is_initialized() == ray_was_up, argv  # no cluster was started
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_read_only_storage_path_is_called_read_only_not_full(tmp_path):
    """A small read-only file system (a tmpfs mounted ro in a user namespace): exit 2, one line
    saying read-only, not "full"."""
    ro = tmp_path / "ro"
    ro.mkdir()
    script = (f"mount -t tmpfs -o ro,size=1m tmpfs {ro} && exec {PY} -m tune_vqvae.search --mock "
              f"--loss gmsd --storage-path {ro}/runs")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no user namespaces here (unshare -rm) to mount a read-only file system")
    out = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 2, out.stderr[-2000:]
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "read-only file system" in err[0] and "full" not in err[0], err


def test_bad_input_via_the_command_line(tmp_path):
    out = subprocess.run([PY, "-m", "tune_vqvae.search", "--loss", "fancy"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: unknown loss 'fancy'; valid: psnr, ssim, ms_ssim, haarpsi, gmsd, ms_gmsd, lpips "
        "or module:factory"]


# --- two nodes ------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path):
    """A head and a worker node (two `ray start --block` processes on this machine, one
    CPU each, stopped by their pids); the search connects with --address.

    `ray start` replaces 127.0.0.1 by the machine's own address, so the address comes
    from the head's output."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    ray_bin = str(Path(PY).parent / "ray")
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--block"]
    head_log = tmp_path / "head.log"
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths must fit
    with open(head_log, "w") as log:
        head = subprocess.Popen([ray_bin, "start", "--head", f"--port={free_port()}",
                                 "--include-dashboard=false", f"--temp-dir={ray_tmp}",
                                 *common], env=env, stdout=log, stderr=subprocess.STDOUT)
    procs = [head]
    try:
        deadline = time.time() + 90
        while not (m := re.search(r"ray start --address='([^']+)'", head_log.read_text())):
            assert head.poll() is None and time.time() < deadline, head_log.read_text()[-2000:]
            time.sleep(0.5)
        address = m.group(1)
        procs.append(subprocess.Popen([ray_bin, "start", f"--address={address}", *common], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        out = subprocess.run(
            [PY, "-c", WAIT_FOR_TWO_NODES, address], env=env, capture_output=True, text=True, timeout=90)
        assert out.returncode == 0, out.stderr[-2000:]
        out = subprocess.run(
            [PY, "-m", "tune_vqvae.search", "--mock", "--loss", "gmsd", "--epochs", "2",
             "--num-samples", "6", "--max-concurrent", "2", "--no-early-stop",
             "--faults", json.dumps({"sleep_s": 0.5}), "--address", address,
             "--storage-path", str(tmp_path), "--name", "two"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        rows, _ = load_results(tmp_path / "two")
        assert set(rows.status) == {"COMPLETED"}
        assert rows.node_id.nunique() == 2
    finally:
        for p in reversed(procs):  # `ray start --block` stops its node on SIGTERM
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)


WAIT_FOR_TWO_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
deadline = time.time() + 60
while len([n for n in ray.nodes() if n["Alive"]]) < 2:
    assert time.time() < deadline, ray.nodes()
    time.sleep(0.5)
"""


# --- cluster launcher config --------------------------------------------------------------


def test_cluster_yaml_is_valid_for_rays_cluster_launcher():
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    # What `ray up` does first: fill in the provider's defaults, then check the result
    # against Ray's cluster-config JSON schema (ray/autoscaler/ray-schema.json).
    validate_config(prepare_config(config))
    assert config["provider"]["type"] == "aws"
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["min_workers"] == 0 and workers["max_workers"] >= 1  # autoscaling GPU workers
    assert any("pip install" in c and "tune_vqvae" in c for c in config["setup_commands"])
    assert any("/mnt/shared" in c for c in config["setup_commands"])  # shared results storage
