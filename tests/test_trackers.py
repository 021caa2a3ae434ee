"""--log-to mlflow / wandb: mock searches logged through Ray Tune's tracker callbacks into a
real local MLflow file store and W&B offline files; bad input exits 2 before Ray starts."""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import sys

import pandas as pd
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 token auth: off for private test clusters
import ray  # noqa: E402
from processes import run  # noqa: E402

from tune_vqvae.search import SearchConfig  # noqa: E402
from tune_vqvae.search._cli import build_parser, settings  # noqa: E402
from tune_vqvae.search._trackers import answer_summary  # noqa: E402
from tune_vqvae.stats import equivalence  # noqa: E402

SMALL = ["--mock", "--loss", "gmsd", "--epochs", "2", "--num-samples", "4", "--max-concurrent", "2"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("extra, words", [
    (["--log-to", "neptune"], "unknown --log-to 'neptune'; valid: mlflow, wandb"),
    (["--mlflow-uri", "sqlite:///x.db"], "--mlflow-uri applies to MLflow: add --log-to mlflow"),
])
def test_bad_tracker_flags_exit_2_with_one_line(tmp_path, capsys, extra, words):
    ray_was_up = ray.is_initialized()
    assert run([*SMALL, "--storage-path", str(tmp_path), "--name", "x", *extra]) == 2
    assert words in one_error_line(capsys)
    assert ray.is_initialized() == ray_was_up and not any(tmp_path.iterdir())  # nothing started, written


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_a_missing_tracker_package_says_how_to_install_it(tmp_path, capsys, monkeypatch, tracker):
    monkeypatch.setitem(sys.modules, tracker, None)  # `import mlflow` raises ImportError
    assert run([*SMALL, "--storage-path", str(tmp_path), "--name", "x", "--log-to", tracker]) == 2
    line = one_error_line(capsys)
    assert f"--log-to {tracker} needs the {tracker} package" in line
    assert line.endswith("pip install 'tune_vqvae[trackers]'")
    assert not any(tmp_path.iterdir())


def test_wandb_online_without_an_api_key_exits_2(no_wandb_key, tmp_path, capsys):
    assert run([*SMALL, "--storage-path", str(tmp_path / "out"), "--log-to", "wandb"]) == 2
    assert "WANDB_MODE=offline" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_resume_keeps_the_trackers_and_refuses_other_ones(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    saved = SearchConfig(losses=["gmsd"], mock=True, epochs=2, num_samples=4, log_to=["mlflow"],
                         mlflow_uri="sqlite:///elsewhere.db", name="s", storage_path=str(tmp_path))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "search.json").write_text(json.dumps(dataclasses.asdict(saved)))
    cfg, _, resume = settings(build_parser().parse_args(["--resume", str(tmp_path / "s")]))
    assert resume and cfg.log_to == ["mlflow"] and cfg.mlflow_uri == "sqlite:///elsewhere.db"
    assert run(["--resume", str(tmp_path / "s"), "--log-to", "wandb"]) == 2
    assert "--log-to wandb (saved: mlflow) would change them" in one_error_line(capsys)


def test_a_new_search_saves_the_mlflow_uri_of_the_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    a = build_parser().parse_args(["--mock", "--loss", "gmsd", "--log-to", "mlflow", "--log-to", "mlflow"])
    cfg, _, _ = settings(a)
    assert cfg.log_to == ["mlflow"] and cfg.mlflow_uri == "http://127.0.0.1:5000"


def test_answer_summary_takes_recommended_weights_and_verdicts():
    answer = {"losses": {
        "gmsd": {"surrogate": {"recommended_w": 2.0, "mean": [1, 2]},
                 "comparisons": {"recommended_vs_baseline": {"verdict": "better", "diff": -0.5,
                                                             "percent": -50.0},
                                 "best_observed_vs_baseline": {"verdict": None, "note": "too few"}}},
        "ssim+gmsd": {"surrogate": {"recommended": {"w1": 0.1, "w2": 3.0}}, "comparisons": {}},
    }}
    metrics, verdicts = answer_summary(answer)
    assert metrics == {"gmsd.recommended_w": 2.0, "gmsd.recommended_vs_baseline.diff": -0.5,
                       "gmsd.recommended_vs_baseline.percent": -50.0,
                       "ssim+gmsd.recommended_w1": 0.1, "ssim+gmsd.recommended_w2": 3.0}
    assert verdicts == {"gmsd.recommended_vs_baseline": "better", "gmsd.best_observed_vs_baseline": "None"}
    assert answer_summary(None) == ({}, {})


def trials_of(exp) -> pd.DataFrame:
    return pd.read_csv(exp / "results.csv")


@pytest.mark.slow
def test_mlflow_file_store_gets_one_run_per_trial_and_the_answer(ray_cluster, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert run([*SMALL, "--baseline-seeds", "2", "--confirm-seeds", "2", "--storage-path", str(tmp_path),
                "--name", "exp", "--log-to", "mlflow"]) == 0
    rows = trials_of(tmp_path / "exp")
    doc = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert (tmp_path / "mlruns").is_dir()  # the default: beside the search directories
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("exp")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    trial_runs = [r for r in runs if "trial_name" in r.data.tags]
    assert len(trial_runs) == len(rows) and len(rows) >= 4 + 2 + 2  # search, baseline, confirmation

    for _, row in rows.iterrows():
        (r,) = [r for r in trial_runs if row.trial_id in r.data.tags["trial_name"]]
        assert r.info.status == "FINISHED" and r.data.tags["tune_experiment"] == row.experiment
        params = r.data.params
        assert params["loss"] == row.loss and params["role"] == ("baseline" if row.role == "baseline"
                                                                 else "search")
        assert int(params["train/seed"]) == row.seed
        assert params["with_mse"] == str(bool(row.with_mse))
        history = client.get_metric_history(r.info.run_id, "objective")
        assert sorted(m.step for m in history) == [1, 2]  # one value per epoch
        assert max(history, key=lambda m: m.step).value == pytest.approx(row.value)
        assert {"epoch", "swd", "val_mse"} <= set(r.data.metrics)

    (answer,) = [r for r in runs if r.info.run_name == "answer"]
    metrics, verdicts = answer_summary(doc["answer"])
    assert verdicts["gmsd.recommended_vs_baseline"] in equivalence.VERDICTS  # against the baseline
    assert {k: answer.data.tags[k] for k in verdicts} == verdicts
    assert answer.data.metrics["gmsd.recommended_w"] == pytest.approx(
        doc["answer"]["losses"]["gmsd"]["surrogate"]["recommended_w"])
    assert answer.data.params["log_to"] == "['mlflow']"
    files = {f.path for f in client.list_artifacts(answer.info.run_id)}
    assert files == {"results.json", "results.csv"}
    local = client.download_artifacts(answer.info.run_id, "results.json", str(tmp_path / "dl"))
    assert json.loads(open(local).read())["answer"] == doc["answer"]


def wandb_records(path):
    """The protobuf records of a W&B run's .wandb log. wandb ships no reader of it (its core
    writes it in Go); the format is LevelDB's log: a 7-byte header (":W&B", magic, version),
    then 32 KiB blocks of chunks [crc32c:4][length:2, LE][type:1][data], type 1 a whole record,
    2/3/4 its first/middle/last part; a block's tail of under 7 bytes is padding."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    pos, part, block = 7, b"", 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # padding to the next block
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        if kind == 0:  # zeroed tail of a preallocated block
            break
        part += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(part)
            yield record
            part = b""


def items(entries) -> dict:
    """A record's items, {key: value}; a key is `key`, or `nested_key` joined by '/'."""
    return {e.key or "/".join(e.nested_key): json.loads(e.value_json) for e in entries}


def wandb_runs(root):
    """[(config, history records, summary, artifact files)] of W&B's offline runs under root."""
    out = []
    for d in sorted((root / "wandb").glob("offline-run-*")):
        (log,) = d.glob("run-*.wandb")
        config, history, summary, files = {}, [], {}, []
        for rec in wandb_records(log):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                config.update(items(rec.run.config.update))
            elif kind == "config":
                config.update(items(rec.config.update))
            elif kind == "history":
                history.append(items(rec.history.item))
            elif kind == "summary":
                summary.update(items(rec.summary.update))
            elif kind == "artifact":
                files += [e.path for e in rec.artifact.manifest.contents]
        out.append((config, history, summary, files))
    return out


@pytest.mark.slow
def test_wandb_offline_files_hold_every_trial_and_the_answer(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wbdata"))  # the answer's staged files
    (tmp_path / "wb").mkdir()
    assert run([*SMALL, "--baseline-seeds", "1", "--confirm-seeds", "0", "--storage-path", str(tmp_path),
                "--name", "wexp", "--log-to", "wandb"]) == 0
    rows = trials_of(tmp_path / "wexp")
    runs = wandb_runs(tmp_path / "wb")
    by_trial = {c["trial_id"]: (c, h) for c, h, _, _ in runs if "trial_id" in c}
    assert set(by_trial) == set(rows.trial_id) and len(rows) == 5

    for _, row in rows.iterrows():
        config, history = by_trial[row.trial_id]
        assert config["loss"] == row.loss and config["train"]["seed"] == row.seed
        objective = [h["objective"] for h in history if "objective" in h]
        assert len(objective) == 2 and objective[-1] == pytest.approx(row.value)  # per epoch

    (answer,) = [(c, s, f) for c, _, s, f in runs if "trial_id" not in c]
    config, summary, files = answer
    assert config["log_to"] == ["wandb"] and config["name"] == "wexp"
    doc = json.loads((tmp_path / "wexp" / "results.json").read_text())
    assert summary["gmsd.recommended_w"] == pytest.approx(
        doc["answer"]["losses"]["gmsd"]["surrogate"]["recommended_w"])
    assert sorted(files) == ["results.csv", "results.json"]
