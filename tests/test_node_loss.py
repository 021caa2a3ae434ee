"""Node loss: a search on a multi-node Ray cluster (ray.cluster_utils.Cluster: a head without
CPUs, where the driver runs, and two one-CPU worker nodes, all on 127.0.0.1) loses a worker
node mid-trial. Its trial is retried on the other node from its last checkpoint, every epoch
is recorded once, and the search finishes. The nodes share storage through a local directory
(on a real cluster: EFS/NFS or s3://, see README "Cluster").

The cluster's processes are stopped through its own handles (Cluster.remove_node/shutdown),
the driver by its session id; RAY_AUTH_MODE=disabled, own temp dirs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from processes import kill_session
from waiting import wait_until

from tune_vqvae.vocab import RESULTS_CSV, TRIAL_STATE_FILE

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
EPOCHS = 4


def last_checkpoint(trial_dir: Path) -> list[dict]:
    """The results a trial reported up to its newest checkpoint (each with its node_id)."""
    for c in sorted(trial_dir.glob("checkpoint_*"), reverse=True):
        try:
            return json.loads((c / TRIAL_STATE_FILE).read_text())["reported"]
        except (OSError, ValueError, KeyError):  # being written: the next poll reads it
            continue
    return []


@pytest.fixture
def cluster(monkeypatch):
    """A head (0 CPUs) and two 1-CPU worker nodes on 127.0.0.1 -> (cluster, [worker nodes])."""
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # inherited by the nodes' processes
    monkeypatch.setenv("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "0")
    ray_tmp = tempfile.mkdtemp(prefix="rn", dir="/tmp")  # short: Ray's socket paths must fit
    # Cluster writes the head's address to $RAY_TMPDIR/ray/ray_current_cluster whatever
    # temp_dir says, and fails where that directory does not exist yet (a fresh machine where
    # no Ray ran before this test): keep that file in this test's own directory too.
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    os.makedirs(os.path.join(ray_tmp, "ray"))
    common = dict(node_ip_address="127.0.0.1", temp_dir=ray_tmp)
    c = Cluster(initialize_head=True, connect=False, shutdown_at_exit=False,
                head_node_args=dict(num_cpus=0, include_dashboard=False, **common))
    try:
        workers = [c.add_node(num_cpus=1, **common) for _ in range(2)]
        c.wait_for_nodes(timeout=60)
        yield c, workers
    finally:
        c.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def test_lost_worker_node_trial_resumes_on_another_node(cluster, tmp_path):
    c, workers = cluster
    # Ray's ray.init turns a 127.0.0.1 address into the machine's own address (to reach remote
    # nodes), where this cluster does not listen; with "clusters off" its node address stays
    # the loopback one, like the nodes'.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    argv = [PY, "-m", "tune_vqvae.search", "--mock", "--loss", "gmsd", "--epochs", str(EPOCHS),
            "--num-samples", "4", "--max-concurrent", "2", "--no-early-stop", "--baseline-seeds", "1",
            "--confirm-seeds", "0", "--address", c.address, "--storage-path", str(tmp_path),
            "--name", "n", "--faults", json.dumps({"sleep_s": 1.0})]
    exp = tmp_path / "n"
    log = tmp_path / "driver.log"
    lost = workers[0]
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        # Wait until a trial on the node to lose has checkpointed an epoch and is not done.
        def cut_off_on_lost_node():
            assert proc.poll() is None, "the search ended first:\n" + log.read_text()[-3000:]
            return {d: r for d in exp.glob("*/*_*") if d.is_dir()
                    and (r := last_checkpoint(d)) and r[-1]["node_id"] == lost.node_id
                    and len(r) < EPOCHS}

        on_lost = wait_until(cut_off_on_lost_node, 180,
                             lambda: "no trial ran on the node:\n" + log.read_text()[-3000:], interval=0.2)
        c.remove_node(lost, allow_graceful=False)  # the node dies: raylet and its workers killed
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail("the search did not finish after the node loss:\n" + log.read_text()[-3000:])
    finally:
        kill_session(proc.pid)
    output = log.read_text()
    assert proc.returncode == 0, output[-3000:]

    rows = pd.read_csv(exp / RESULTS_CSV)
    assert len(rows) == 5 and rows.trial_id.is_unique and set(rows.status) == {"COMPLETED"}
    from analysis.experiment import read_experiment

    trials = {t.path: t for e in ("baseline", "gmsd") for t in read_experiment(exp / e)}
    assert len(trials) == 5
    for t in trials.values():  # every epoch exactly once, in what the analysis reads
        assert [int(e) for e in t.history["epoch"]] == list(range(1, EPOCHS + 1)), t.path
    survivor = workers[1].node_id
    for trial_dir, before in on_lost.items():
        reported = last_checkpoint(trial_dir)
        nodes = [r["node_id"] for r in reported]
        done = len(before)  # epochs checkpointed on the lost node: kept, not re-run
        assert nodes[:done] == [lost.node_id] * done, nodes
        assert set(nodes[len(before) + 1:]) <= {survivor} and nodes[-1] == survivor, nodes
        trial_id = trial_dir.name.rsplit("_", 1)[0]
        lines = [s for s in output.splitlines() if f" {trial_id}" in s and "epoch " in s]
        for k in range(1, done + 1):  # reported once: the retry started after epoch `done`
            assert sum(f"epoch {k}/{EPOCHS}" in s for s in lines) == 1, lines
