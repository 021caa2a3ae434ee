import json

import pytest

from tune_vqvae.bench import main


@pytest.mark.slow
def test_quick_benchmark_writes_side_by_side_figures(tmp_path):
    assert main(["train", "--quick", "--steps", "2", "--repeats", "1", "--out-dir", str(tmp_path)]) == 0
    assert main(["overhead", "--quick", "--steps", "1", "--repeats", "2",
                 "--out-dir", str(tmp_path / "o")]) == 0
    (train_file,) = tmp_path.glob("*.json")
    train = json.loads(train_file.read_text())["train"]
    assert train["reference"]["speedup_vs_reference"] == 1
    assert train["optimised"]["images_per_s"] > 0 and train["optimised"]["repeats"] == 1
    (overhead_file,) = (tmp_path / "o").glob("*.json")
    overhead = json.loads(overhead_file.read_text())["overhead"]
    # lpips is timed where its weights files are found
    assert set(overhead) - {"lpips"} == {"mse", "psnr", "ssim", "ms_ssim", "haarpsi", "gmsd", "ms_gmsd"}
    assert overhead["mse"]["step_time_vs_mse"] == 1
    assert overhead["mse"]["ratio_median"] == 1 and overhead["mse"]["vs_bar"] == "met"
    for row in overhead.values():  # paired interval of each loss's ratio to MSE, 2 repeats
        assert len(row["repeat_s"]) == 2 and row["bar"] == 1.1
        assert row["ratio_low"] <= row["ratio_median"] <= row["ratio_high"]
        assert row["vs_bar"] in ("met", "missed", "not resolved")


def test_paired_ratio_interval_and_its_verdict_against_the_bar():
    from tune_vqvae.bench.timing import bar_verdict, paired_ratio

    mse = [1.00, 1.06, 0.95, 1.02, 0.97, 1.04, 0.99]  # +-6% drift, shared by the loss's round
    jitter = [0, .01, -.01, .005, -.005, .01, -.01]  # what the loss's run adds to the shared drift
    near = paired_ratio([1.03 * t * (1 + e) for t, e in zip(mse, jitter)], mse)
    assert near["vs_bar"] == "met" and near["ratio_high"] < 1.10  # pairing cancels the drift
    assert near["ratio_low"] <= near["ratio_median"] <= near["ratio_high"]
    far = paired_ratio([1.25 * t for t in mse], mse)
    assert far["vs_bar"] == "missed" and far["ratio_low"] == pytest.approx(1.25)
    noisy = paired_ratio([1.12 * t * f for t, f in zip(mse, [1, 1.2, .85, 1.1, .9, 1.15, .95])], mse)
    assert noisy["vs_bar"] == "not resolved" and noisy["ratio_low"] < 1.10 < noisy["ratio_high"]
    one = paired_ratio([1.05], [1.0])  # one repeat: a ratio, no interval
    assert one["ratio_median"] == 1.05 and one["ratio_low"] is None and one["vs_bar"] == "not resolved"
    assert [bar_verdict(lo, hi, 1.1) for lo, hi in [(1.0, 1.1), (1.11, 1.2), (1.05, 1.15), (None, None)]] \
        == ["met", "missed", "not resolved", "not resolved"]
    with pytest.raises(ValueError):  # unpaired repeats are a bug, not a ratio
        paired_ratio([1.0, 1.1], [1.0])


def test_a_failing_benchmark_is_recorded_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    from tune_vqvae.bench import compute as bench

    def broken(bc, data):
        raise RuntimeError("no kernel image is available for execution on the device")

    monkeypatch.setattr(bench, "BENCHES", {"train": lambda bc, data: {"optimised": {"images_per_s": 1.0}},
                                           "fid": broken})
    monkeypatch.setattr(bench, "bench_packing", lambda bc: {"1 per device": {"trials": 1}})
    assert main(["all", "--quick", "--out-dir", str(tmp_path)]) == 1  # failed: not a silent 0
    (path,) = tmp_path.glob("*.json")
    results = json.loads(path.read_text())
    assert results["fid"] == {"error": "RuntimeError: no kernel image is available for execution "
                                       "on the device"}
    assert results["train"]["optimised"]["images_per_s"] == 1.0 and "packing" in results
    assert "fid failed" in capsys.readouterr().err


def _child(code: str):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def test_packing_children_start_together_and_a_dead_child_is_an_error():
    from tune_vqvae.bench.compute import run_in_lockstep

    waits = "print('a library says hi'); print('ready', flush=True); input(); print('{\"images_per_s\": %d}')"
    assert run_in_lockstep([_child(waits % 5), _child(waits % 7)]) == [5, 7]
    alive, dead = _child(waits % 5), _child("import sys; sys.exit(3)")
    with pytest.raises(RuntimeError, match="exit 3"):
        run_in_lockstep([alive, dead])
    alive.kill()
    alive.wait()
