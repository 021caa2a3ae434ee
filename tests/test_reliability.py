"""Reliability: each fault is injected and the search must survive it, losing nothing.

- a trial's worker process is killed (os._exit) -> retried from its checkpoint, same result
- the search driver is killed (kill -9) -> `--resume` finishes it, the Optuna study intact
- bad input -> exit 2, one line, before any trial, existing results untouched
- eight processes fill an empty data / FID cache at once -> one valid copy
- `--seeds N` re-runs the best configs with other seeds (mean ± std in the report)

Ray here: RAY_AUTH_MODE=disabled, 127.0.0.1, own temp dirs (RAY_TMPDIR for the search
subprocesses), and every process started is stopped by its own pid / session id.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters

from processes import kill_session, run, search_env, study  # noqa: E402
from waiting import Lines, wait_until  # noqa: E402

from tune_vqvae import errors, search  # noqa: E402
from tune_vqvae.testing import MOCK_SEED_NOISE, mock_final_objective  # noqa: E402
from tune_vqvae.vocab import JOURNAL_FILE, SETTINGS_FILE  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
STATES = optuna.trial.TrialState


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def analysed_epochs(trial_dir: Path) -> list[int]:
    """The epochs `python -m analysis` reads for a trial (result.json + its checkpoint)."""
    from analysis.experiment import read_experiment

    (trial,) = [t for t in read_experiment(trial_dir.parent) if t.path.name == trial_dir.name]
    return [int(e) for e in trial.history["epoch"]]


def epochs_of(trial_dir: Path) -> list[int]:
    return [int(json.loads(line)["epoch"]) for line in (trial_dir / "result.json").read_text().splitlines()]


# --- 1. a trial's worker process is killed -------------------------------------------------

TINY = ["--epochs", "2", "--hidden", "16", "--codebook-size", "32", "--train-images", "128",
        "--val-images", "64", "--batch-size", "32", "--fid-samples", "64", "--objective", "swd"]
COMPARED = ("train_loss", "train_recon", "train_vq", "val_mse", "val_psnr", "val_ssim", "val_recon",
            "perplexity", "codes_used", "swd")


def uninterrupted(params: dict) -> dict:
    """The trial's run without Ray and without faults: what `train_vqvae` does, in this
    process, with the trial's thread count (CPU training is bitwise deterministic)."""
    import torch

    from tune_vqvae.losses import LossConfig
    from tune_vqvae.metrics import FIDConfig, FIDEvaluator
    from tune_vqvae.train import TrainConfig, Trainer
    from tune_vqvae.vocab import loss_settings

    cfg = TrainConfig.from_dict(params["train"])
    name, w, with_mse = loss_settings(params)
    cfg.loss = LossConfig(name=name, weight=w, with_mse=with_mse)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(params["cpus"]))
    try:
        with tempfile.TemporaryDirectory() as log_dir:
            trainer = Trainer(cfg, log_dir=log_dir)
            evaluator = FIDEvaluator(FIDConfig.from_dict(params["fid"]), trainer.data, device=trainer.device)
            while trainer.epoch < cfg.epochs:
                metrics = trainer.train_epoch()
            metrics.update(evaluator.evaluate(trainer.reconstruct))
            trainer.close()
    finally:
        torch.set_num_threads(threads)
    return metrics


@pytest.mark.slow
def test_killed_worker_is_retried_from_checkpoint_with_the_uninterrupted_result(ray_cluster, tmp_path):
    """Both trials' worker processes die (os._exit) before epoch 2: each is retried from its
    epoch-1 checkpoint, reports every epoch once and ends with bitwise the metrics of a run
    that was never interrupted (the tiny real model on CPU). Whether Ray's result.json keeps
    epoch 1 depends on when it last synced (a race); what the analysis reads must not:
    tests/test_analysis_answer.py forces the lost line deterministically."""
    space = tmp_path / "one.yaml"
    space.write_text("losses: [gmsd]\ngrid: true\npoints: [{with_mse: true, w: 0.5}]\n")
    markers = tmp_path / "markers"
    rc = run(["--space", str(space), *TINY, "--max-failures", "1", "--storage-path", str(tmp_path),
              "--baseline-seeds", "1", "--confirm-seeds", "0", "--name", "killed",
              "--faults", json.dumps({"kill_at_epoch": 2, "marker_dir": str(markers)})])
    assert rc == 0
    rows = pd.read_csv(tmp_path / "killed" / "results.csv")
    assert len(rows) == 2 and set(rows.status) == {"COMPLETED"}
    assert len(os.listdir(markers)) == 2  # both workers were killed once
    for _, row in rows.iterrows():
        trial = Path(row.path)
        assert analysed_epochs(trial) == [1, 2]  # none lost, none repeated
        assert list(pd.read_csv(trial / "progress.csv").epoch) == [1, 2]
        last = json.loads((trial / "result.json").read_text().splitlines()[-1])
        assert last["iterations_since_restore"] == 1  # epoch 2 ran after the restore
        reference = uninterrupted(json.loads((trial / "params.json").read_text()))
        for key in COMPARED:
            assert last[key] == reference[key], (row.role, key)


# --- 2. the search driver is killed -----------------------------------------------------

def two_finished_one_running(lines: list[str]) -> bool:
    """Two [gmsd] trials at epoch 3/3, then one at epoch 1/3 (mid-run)."""
    done = [i for i, s in enumerate(lines) if s.startswith("[gmsd]") and "epoch 3/3" in s]
    return len(done) >= 2 and any(s.startswith("[gmsd]") and "epoch 1/3" in s for s in lines[done[1] + 1:])


@pytest.mark.slow
def test_killed_driver_then_resume_finishes_the_search(tmp_path):
    """kill -9 of the search process mid-run (the mock, 0.7 s per epoch), then the same
    experiment with --resume: finished trials are not re-run, running ones continue from
    their checkpoints, the Optuna study keeps its history, the table has each trial once."""
    ray_tmp = tempfile.mkdtemp(prefix="rk", dir="/tmp")  # short: Ray's socket paths must fit
    env = search_env(ray_tmp)
    exp = tmp_path / "k"
    argv = [PY, "-m", "tune_vqvae.search", "--mock", "--loss", "gmsd", "--epochs", "3",
            "--num-samples", "6", "--max-concurrent", "2", "--no-early-stop", "--num-cpus", "2",
            "--storage-path", str(tmp_path), "--name", "k", "--faults", json.dumps({"sleep_s": 0.7}),
            "--baseline-seeds", "1", "--confirm-seeds", "0"]
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    output = Lines(proc.stdout)
    try:
        output.wait_for(two_finished_one_running, 240, "two finished loss trials and a third one running")
        os.kill(proc.pid, signal.SIGKILL)  # the driver: no handler, no last snapshot
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid)  # and whatever Ray processes outlived it
        output.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (exp / "results.csv").exists()
    # What the killed driver had recorded: its last experiment snapshot and the journal.
    snap = sorted((exp / "gmsd").glob("experiment_state-*.json"))[-1]
    terminated = {json.loads(m)["trial_id"] for m, _ in json.loads(snap.read_text())["trial_data"]
                  if json.loads(m)["status"] == "TERMINATED"}
    before = {t.number: (t.state, t.value, t.params) for t in study(exp, "gmsd").trials}
    partial = {d.name.split("_")[0]: epochs_of(d) for d in (exp / "gmsd").iterdir()
               if (d / "result.json").is_file() and 0 < len(epochs_of(d)) < 3}
    assert sum(s == STATES.COMPLETE for s, _, _ in before.values()) >= 2

    resumed = subprocess.Popen([PY, "-m", "tune_vqvae.search", "--resume", str(exp), "--num-cpus", "2"],
                               env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = resumed.communicate(timeout=300)
    finally:
        kill_session(resumed.pid)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert resumed.returncode == 0, out[-3000:] + err[-3000:]

    rows = pd.read_csv(exp / "results.csv")
    loss_rows = rows[rows.experiment == "gmsd"]
    assert len(loss_rows) == 6 and loss_rows.trial_id.is_unique
    assert set(rows.status) == {"COMPLETED"} and (rows.role == "baseline").sum() == 1
    for trial_id in terminated:  # finished before the last snapshot: not run again
        assert f" {trial_id} " not in out
    for trial_id, done in partial.items():  # cut off mid-run: continued after its last epoch
        lines = [line for line in out.splitlines() if line.startswith(f"[gmsd] {trial_id} ")]
        assert not [line for line in lines for k in done if f"epoch {k}/3" in line], lines
    for path in rows.path:  # every epoch exactly once, across the kill
        assert epochs_of(Path(path)) == [1, 2, 3], path

    s = study(exp, "gmsd")
    after = {t.number: t for t in s.trials}
    for number, (state, value, params) in before.items():  # the history is kept
        if state == STATES.COMPLETE:
            assert after[number].state == STATES.COMPLETE and after[number].value == value
            assert after[number].params == params
    assert not [t for t in s.trials if t.state in (STATES.RUNNING, STATES.WAITING)]  # none dangling
    complete = [t for t in s.trials if t.state == STATES.COMPLETE]
    assert len(complete) == 6  # one per Ray trial, each told once
    assert {t.user_attrs["ray_trial_id"] for t in complete} == set(loss_rows.trial_id)
    for t in s.trials:
        if t.state == STATES.FAIL:  # asked just before the kill, never run
            assert "orphaned" in t.user_attrs


def test_restored_searcher_reconciles_the_journal(tmp_path):
    """What a killed driver leaves: a searcher snapshot older than the journal. Trial a
    finished after the snapshot (its repeated reports must be ignored, not crash the
    experiment with UpdateFinishedTrialError); trial b was asked after the snapshot (no Tune
    trial owns it: marked FAIL instead of RUNNING forever, which the GP would take as pending)."""
    space = search.load_space(REPO / "search_spaces" / "gmsd.yaml")
    journal = tmp_path / JOURNAL_FILE

    def searcher():
        return search.WeightSearch(
            space=search.WeightSpace(space), metric="objective", mode="min",
            sampler=search.WeightSampler(seed=0), epochs=3,
            study_name="gmsd", storage=search.journal_storage(journal))

    first = searcher()
    assert first.suggest("a") is not None
    first.save(str(tmp_path / "searcher.pkl"))  # the experiment snapshot
    assert first.suggest("b") is not None
    result = {"objective": 0.5, "training_iteration": 3, "epoch": 3.0}
    first.on_trial_result("a", result)
    first.on_trial_complete("a", result)
    # -- the driver dies here; --resume restores the snapshot --
    second = searcher()
    second.restore(str(tmp_path / "searcher.pkl"))
    second.on_trial_result("a", result)  # Tune re-runs a's last epoch from its checkpoint
    second.on_trial_complete("a", result)
    trials = study(tmp_path, "gmsd").trials
    assert [t.state for t in trials] == [STATES.COMPLETE, STATES.FAIL]
    assert trials[0].value == 0.5 and "orphaned" in trials[1].user_attrs
    assert second.suggest("c") is not None  # the search goes on
    assert study(tmp_path, "gmsd").trials[-1].state == STATES.RUNNING


# --- 3. bad input ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(ray_cluster, tmp_path_factory):
    """A finished mock search (the paper grid, 1 epoch) whose files bad input must not touch."""
    storage = tmp_path_factory.mktemp("finished")
    rc = run(["--mock", "--space", str(REPO / "search_spaces/paper_grid.yaml"), "--loss", "gmsd",
              "--epochs", "1", "--storage-path", str(storage), "--name", "exp"])
    assert rc == 0
    return storage


def test_bad_input_leaves_an_existing_search_untouched(finished, tmp_path, capsys, monkeypatch):
    """The cases tests/test_search.py does not cover, each against the storage path of a
    finished search: exit 2, one line, nothing started, nothing of it changed."""
    exp = finished / "exp"
    before = snapshot(exp)
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("losses: [gmsd\nw: {low: 0.01, high: 1}\n")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    s = str(finished)
    cases = [
        (["--loss", "gmsd", "--space", str(malformed), "--mock", "--storage-path", s, "--name", "n1"],
         "is not valid YAML at line"),
        (["--loss", "gmsd", "--data", str(corrupt), "--objective", "swd", "--storage-path", s,
          "--name", "n2"], "is not a readable .npz file"),
        (["--mock", "--loss", "gmsd", "--storage-path", s, "--name", "exp"], "already holds a search"),
        (["--resume", str(exp), "--seeds", "-1"], "--seeds must be >= 0"),
        (["--resume", str(exp / "gmsd")], "is not a search experiment"),
        (["--mock", "--loss", "gmsd", "--seeds", "-2", "--storage-path", s, "--name", "n3"],
         "--seeds must be >= 0"),
        # --resume keeps the saved settings: a flag that would change one is refused, not ignored
        (["--resume", str(exp), "--loss", "ssim"], "--loss ssim (saved: gmsd) would change them"),
        (["--resume", str(exp), "--epochs", "3", "--lr", "0.1", "--seeds", "1"],
         "--epochs 3 (saved: 1), --lr 0.1 (saved: 0.0002) would change them"),
        (["--resume", str(exp), "--early-stop"], "--early-stop on (saved: off)"),
        (["--resume", str(exp), "--faults", '{"sleep_s": 1}'], '--faults {"sleep_s": 1} (saved: default)'),
    ]
    for argv, words in cases:
        assert run(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], (argv, err)

    # A full disk, found up front: too little free space on the storage path.
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 20))
    assert run(["--mock", "--loss", "gmsd", "--storage-path", s, "--name", "n4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is full (1 MiB free" in err[0] and "--storage-path" in err[0], err
    monkeypatch.setattr(shutil, "disk_usage", real)

    assert sorted(p.name for p in finished.iterdir()) == ["exp"]  # no new experiment
    assert snapshot(exp) == before


class FullDisk:
    """`os` for tune_vqvae.errors in which the data never reaches the disk (ENOSPC)."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.slow
def test_full_disk_while_writing_results_keeps_the_previous_ones(finished, capsys, monkeypatch):
    """--resume of the finished search (nothing to re-run) on a disk that fills up as it
    writes results.csv: exit 2 with one line; the previous results are intact, no temp files."""
    exp = finished / "exp"
    results = {f: (exp / f).read_bytes() for f in ("results.csv", "results.json", SETTINGS_FILE)}
    monkeypatch.setattr(errors, "os", FullDisk())
    assert run(["--resume", str(exp)]) == 2
    monkeypatch.setattr(errors, "os", os)
    out, err = capsys.readouterr()
    assert "resuming" in out and "[gmsd]" not in out  # restored; nothing was re-run
    err = err.strip().splitlines()
    assert len(err) == 1 and err[0] == (f"error: storage path {str(exp)!r} is full (No space left on "
                                        f"device); free space, then continue with --resume {exp}"), err
    for f, data in results.items():
        assert (exp / f).read_bytes() == data, f
    assert not list(exp.glob(".*.tmp"))


# --- 4. eight processes fill an empty cache at once ------------------------------------------

CIFAR_FILES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta"]


def fake_cifar_archive(path: Path, per_batch: int = 20) -> dict[str, str]:
    """A small cifar-10-python.tar.gz in the real layout (pickled batches of (N, 3072) uint8);
    returns the md5 of each file and of the archive."""
    rng = np.random.default_rng(0)
    md5 = {}
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "cifar-10-batches-py"
        folder.mkdir()
        for name in CIFAR_FILES:
            if name == "batches.meta":
                entry = {"label_names": [f"class{i}" for i in range(10)]}
            else:
                entry = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                         "labels": rng.integers(0, 10, per_batch).tolist()}
            data = pickle.dumps(entry)
            (folder / name).write_bytes(data)
            md5[name] = hashlib.md5(data).hexdigest()
        with tarfile.open(path, "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
    md5["archive"] = hashlib.md5(path.read_bytes()).hexdigest()
    return md5


# One of the eight: a fake CIFAR-10 download (copies the archive; the md5 lists are the fake
# files' - torchvision checks them and there is no other way to feed it other bytes), then
# the FID reference statistics with a small fixed extractor. Waits for the start signal so
# all eight race, and leaves a marker per download and per statistics computation.
CHILD = r"""
import json, os, shutil, sys, time
from pathlib import Path
import numpy as np, torch
import torchvision.datasets.utils as tv_utils
from torchvision.datasets import CIFAR10

archive, cache, markers, start, md5_file, out, ready = sys.argv[1:8]
md5 = json.loads(Path(md5_file).read_text())
tag = str(os.getpid())

def fake_download(url, root, filename=None, md5=None, **kwargs):
    Path(markers, "download-" + tag).touch()
    time.sleep(0.5)  # a download takes a while: the others must wait, not start their own
    shutil.copyfile(archive, os.path.join(root, filename))

tv_utils.download_url = fake_download
CIFAR10.tgz_md5 = md5["archive"]
CIFAR10.train_list = [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)]
CIFAR10.test_list = [["test_batch", md5["test_batch"]]]
CIFAR10.meta = {**CIFAR10.meta, "md5": md5["batches.meta"]}

from tune_vqvae.data import DataConfig, load_data
from tune_vqvae.metrics import FIDConfig, FIDEvaluator

compute = FIDEvaluator._compute_reference
def counted(self):
    Path(markers, "stats-" + tag).touch()
    time.sleep(0.5)
    return compute(self)
FIDEvaluator._compute_reference = counted

torch.manual_seed(0)
extractor = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(2),
                                torch.nn.Flatten())
Path(ready, tag).touch()  # imported and patched: waiting for the start
deadline = time.monotonic() + 120
while not Path(start).exists():
    assert time.monotonic() < deadline, "no start signal within 120 s"
    time.sleep(0.01)
data = load_data(DataConfig(source="cifar10", cache_dir=cache))
fid = FIDEvaluator(FIDConfig(samples=64, batch_size=32, cache_dir=cache, fid_mode="off",
                             offline_metric=True), data, extractor=extractor, extractor_id="tiny-0")
mu, sigma = fid.reference_stats()
np.savez(out, x_train=data.x_train.numpy(), x_test=data.x_test.numpy(), mu=mu, sigma=sigma,
         fingerprint=data.fingerprint, stats=str(fid.cache_path()))
"""


@pytest.mark.slow
def test_eight_processes_share_one_dataset_and_one_fid_stats_file(tmp_path):
    md5 = fake_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    (tmp_path / "md5.json").write_text(json.dumps(md5))
    cache, markers, start = tmp_path / "cache", tmp_path / "markers", tmp_path / "start"
    ready = tmp_path / "ready"
    markers.mkdir()
    ready.mkdir()
    procs = [subprocess.Popen([PY, "-c", CHILD, str(tmp_path / "cifar-10-python.tar.gz"), str(cache),
                               str(markers), str(start), str(tmp_path / "md5.json"),
                               str(tmp_path / f"out{i}.npz"), str(ready)], cwd=REPO, stderr=subprocess.PIPE,
                              text=True)
             for i in range(8)]
    try:
        # A barrier: all eight imported and waiting (or one already dead: it says why below).
        wait_until(lambda: len(os.listdir(ready)) == 8 or any(p.poll() is not None for p in procs), 180,
                   "eight processes ready")
        start.touch()  # all eight at once
        errs = [p.communicate(timeout=240)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0] * 8, "\n".join(e[-2000:] for e in errs)

    names = sorted(os.listdir(markers))
    assert sum(n.startswith("download-") for n in names) == 1, names  # one download ...
    assert sum(n.startswith("stats-") for n in names) == 1, names  # ... one statistics pass
    folder = cache / "cifar-10-batches-py"
    for name in CIFAR_FILES:  # one valid extracted dataset
        assert hashlib.md5((folder / name).read_bytes()).hexdigest() == md5[name], name
    outs = [np.load(tmp_path / f"out{i}.npz") for i in range(8)]
    assert outs[0]["x_train"].shape == (100, 3, 32, 32) and outs[0]["x_test"].shape == (20, 3, 32, 32)
    stats = [p for p in (cache / "fid_stats").iterdir() if p.suffix == ".npz"]
    assert len(stats) == 1 and str(stats[0]) == str(outs[0]["stats"])  # one valid npz
    with np.load(stats[0]) as z:
        mu, sigma = z["mu"], z["sigma"]
    assert mu.shape == (32,) and sigma.shape == (32, 32) and np.isfinite(sigma).all()
    for o in outs:  # all eight read the same images and the same statistics
        assert str(o["fingerprint"]) == str(outs[0]["fingerprint"])
        assert np.array_equal(o["x_train"], outs[0]["x_train"])
        assert np.array_equal(o["mu"], mu) and np.array_equal(o["sigma"], sigma)
    assert not [p for p in (cache / "fid_stats").iterdir() if p.name.endswith(".tmp")]


# --- 6. --seeds N ----------------------------------------------------------------------------

@pytest.mark.slow
def test_seeds_rerun_the_best_configs_for_mean_and_std(ray_cluster, tmp_path, capsys):
    rc = run(["--mock", "--space", str(REPO / "search_spaces/paper_grid.yaml"), "--loss", "gmsd",
              "--epochs", "1", "--seeds", "2", "--storage-path", str(tmp_path), "--name", "s",
              "--baseline-seeds", "1", "--confirm-seeds", "0"])
    assert rc == 0
    exp = tmp_path / "s"
    rows = pd.read_csv(exp / "results.csv")
    seeded = rows[rows.role == "seed"]
    assert len(rows) == 5 + 4 and set(rows.status) == {"COMPLETED"}
    # the baseline and gmsd's best grid point (w = 1: the mock's optimum is w = 2) re-run
    # with seeds 1 and 2, each in its own experiment of the search
    assert sorted(zip(seeded.loss, seeded.w.fillna(0), seeded.seed)) == [
        ("gmsd", 1.0, 1), ("gmsd", 1.0, 2), ("mse", 0.0, 1), ("mse", 0.0, 2)]
    assert set(seeded.experiment) == {"baseline-seeds", "gmsd-seeds"}
    for _, r in seeded.iterrows():
        config = {"loss": r.loss, "with_mse": True, "w": 1.0, "train": {"seed": int(r.seed)},
                  "role": "baseline" if r.loss == "mse" else "search"}
        assert r.value == pytest.approx(mock_final_objective(config))
    assert "(seed 2)" in capsys.readouterr().out

    from analysis.cli import main as analysis_main

    assert analysis_main([str(exp), "--out", str(tmp_path / "report"), "--no-reconstructions"]) == 0
    summary = pd.read_csv(tmp_path / "report" / "summary.csv").set_index("loss")
    assert summary.loc["gmsd", "n"] == 3 and summary.loc["gmsd", "w"] == 1.0
    searched = int(rows[(rows.role == "paper") & (rows.w == 1.0)].seed.iloc[0])  # vocab.search_seed
    values = [mock_final_objective({"loss": "gmsd", "w": 1.0, "train": {"seed": s}})
              for s in (searched, 1, 2)]
    assert summary.loc["gmsd", "value"] == pytest.approx(np.mean(values))
    assert summary.loc["gmsd", "value_std"] == pytest.approx(np.std(values, ddof=1))
    assert 0 < summary.loc["gmsd", "value_std"] < 2 * MOCK_SEED_NOISE


@pytest.mark.slow
def test_resume_of_a_finished_search_adds_seed_reruns_once(ray_cluster, tmp_path, capsys):
    """`--resume DIR --seeds N` on a finished search (flags equal to the saved ones are
    accepted): the seed re-runs are added, nothing of the search is re-run, the Optuna study
    is unchanged; a second `--resume DIR --seeds N` adds nothing."""
    grid = str(REPO / "search_spaces/paper_grid.yaml")
    assert run(["--mock", "--space", grid, "--loss", "gmsd", "--epochs", "1", "--storage-path", str(tmp_path),
                "--name", "f", "--baseline-seeds", "1", "--confirm-seeds", "0"]) == 0
    exp = tmp_path / "f"
    first = pd.read_csv(exp / "results.csv")
    assert len(first) == 5 and not (first.role == "seed").any()
    journal = (exp / JOURNAL_FILE).read_bytes()
    capsys.readouterr()

    assert run(["--resume", str(exp), "--seeds", "2", "--loss", "gmsd", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    rows = pd.read_csv(exp / "results.csv")
    seeded = rows[rows.role == "seed"]
    assert len(rows) == 5 + 4 and set(rows.status) == {"COMPLETED"}
    assert sorted(zip(seeded.loss, seeded.seed)) == [("gmsd", 1), ("gmsd", 2), ("mse", 1), ("mse", 2)]
    assert set(seeded[seeded.loss == "gmsd"].w) == {1.0}  # the best grid point (the mock's w* = 2)
    progress = [line for line in out.splitlines() if line.startswith("[")]  # "[gmsd] <trial> ..."
    assert any(line.startswith("[gmsd-seeds]") for line in progress), out  # the re-runs ran
    for trial_id in first.trial_id:  # the search's trials: restored, not run again
        assert not [line for line in progress if f"] {trial_id} " in line], out
    assert set(first.trial_id) <= set(rows.trial_id)
    assert json.loads((exp / SETTINGS_FILE).read_text())["seeds"] == 2
    assert (exp / JOURNAL_FILE).read_bytes() == journal  # seed re-runs are not Optuna trials

    dirs = sorted(p.name for p in exp.glob("*/*/params.json"))
    assert run(["--resume", str(exp), "--seeds", "2"]) == 0  # again: nothing new
    again = pd.read_csv(exp / "results.csv")
    assert len(again) == 9 and set(again.trial_id) == set(rows.trial_id)
    assert sorted(p.name for p in exp.glob("*/*/params.json")) == dirs
