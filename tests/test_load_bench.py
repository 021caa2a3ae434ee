"""The load benchmark at a small size: two --mock searches of 30 trials, 4 running at a time,
at once into one storage path (each its own driver and local Ray on 127.0.0.1, stopped by
session id): every trial once, every epoch once, the Optuna journals consistent with the
results, the drivers' peak memory reported. The full size (200 trials, 8 at a time) is
`python -m tune_vqvae.bench load`; its figures are in benchmarks/README.md."""

from __future__ import annotations

import json

import pytest

from tune_vqvae.bench import load as load_bench


@pytest.mark.slow
def test_two_searches_at_once_into_one_storage_path_lose_nothing(tmp_path):
    result = load_bench.run_load(tmp_path / "runs", trials=30, concurrent=4, searches=2, epochs=2,
                                 timeout_s=900)
    assert result["ok"], json.dumps(result, indent=1)[-6000:]
    assert set(result["searches"]) == {"load0", "load1"}
    for r in result["searches"].values():
        assert r["loss_trials"] == 30 and r["trial_dirs"] == 30 and r["rows"] == 31  # + the baseline
        assert r["journal_complete"] == 30 and r["journal_states"] == {"COMPLETE": 30}
        assert 50 < r["driver_peak_rss_mib"] < 8192 and r["wall_s"] > 0


def test_bench_load_refuses_bad_sizes(capsys):
    from tune_vqvae.bench import main

    with pytest.raises(SystemExit) as e:
        main(["load", "--trials", "0"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == "error: --trials must be >= 1, got 0"
