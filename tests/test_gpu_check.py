"""The GPU check runs end to end in its CPU mode, so it cannot rot between GPU lendings."""

import json
import time

import pytest

from tune_vqvae.bench import gpu_check


@pytest.mark.slow
def test_quick_cpu_check_runs_every_step_and_passes(tmp_path):
    assert gpu_check.main(["--quick", "--device", "cpu", "--out-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("cpu-*-gpu_check-quick.json")
    results = json.loads(path.read_text())
    steps = ["losses_under_autocast", "fast_path_reference", "fused_model", "inception_cuda_vs_cpu",
             "train", "overhead", "fid", "packing", "fused", "profile", "batch_sweep", "epoch_phases",
             "reused_worker", "trial_cost"]
    steps += [f"fast_path {name}" for name in gpu_check.FAST_PATHS]
    assert set(steps) <= set(results["seconds"])
    assert not [s for s in steps if "error" in results[s]]
    assert set(results["verdicts"].values()) == {"pass"} and len(results["verdicts"]) == 3 + 6
    assert len(results["losses_under_autocast"]) == 13  # mse and six losses with and without MSE
    assert "lpips" in results["overhead"]  # timed with random weights where the real ones are missing
    for row in results["overhead"].values():  # a paired interval of each loss's ratio to MSE
        assert row["repeats"] == gpu_check.OVERHEAD_REPEATS["quick"] and row["bar"] == 1.1
        assert row["ratio_low"] <= row["ratio_median"] <= row["ratio_high"]
        assert row["vs_bar"] in ("met", "missed", "not resolved")
    for row in [*results["trial_cost"].values(), *results["reused_worker"].values()]:
        assert 0 < row["trial_efficiency"] < 1 and row["step_s"] > 0
    assert results["profile"]["(all)"]["self_ms_per_step"] > 0 and len(results["profile"]) > 5


def test_a_path_that_trains_differently_fails_the_curve_check():
    ref = [5.0] + [3.0] * 9
    assert gpu_check.compare_curves([5.0] + [3.05] * 9, ref, bf16=False)["ok"]
    assert not gpu_check.compare_curves([5.0] + [3.3] * 9, ref, bf16=False)["ok"]  # ends 10% higher
    assert not gpu_check.compare_curves([5.1] + [3.0] * 9, ref, bf16=False)["ok"]  # 2% off at step 1
    assert gpu_check.compare_curves([5.05] + [3.0] * 9, ref, bf16=True)["ok"]  # bf16 rounding
    assert not gpu_check.compare_curves([5.0] + [float("nan")] * 9, ref, bf16=True)["ok"]


def test_a_step_past_its_cap_or_failing_becomes_an_error_row_and_the_run_goes_on():
    def spin():
        while True:
            time.sleep(0.01)

    row = gpu_check.capped(0.2, spin)
    assert row["ok"] is False and row["error"].startswith("StepTimeout")
    assert gpu_check.capped(5, lambda: 1 / 0)["error"].startswith("ZeroDivisionError")
    assert gpu_check.capped(5, lambda: {"ok": True}) == {"ok": True}


def test_the_cap_is_not_swallowed_by_a_benchmark_that_records_its_own_errors():
    from tune_vqvae.bench.timing import survive

    def bench_with_error_rows():
        return survive("variant", lambda: time.sleep(5))  # survive() catches Exception

    assert gpu_check.capped(0.2, bench_with_error_rows)["error"].startswith("StepTimeout")


def test_only_the_overhead_step_gets_more_repeats(monkeypatch):
    import torch

    from tune_vqvae.bench import compute, timing
    from tune_vqvae.train import TrainConfig

    monkeypatch.setattr(compute, "bench_overhead", lambda bc, data: bc.repeats)
    monkeypatch.setattr(compute, "bench_train", lambda bc, data: bc.repeats)
    bc = timing.BenchConfig(repeats=3)
    for quick, repeats in [(False, 15), (True, 3)]:
        a = gpu_check.build_parser().parse_args(["--device", "cpu"] + (["--quick"] if quick else []))
        steps = gpu_check.plan(a, TrainConfig(device="cpu"), None, bc, torch.device("cpu"))
        assert steps["overhead"][1]() == repeats == gpu_check.OVERHEAD_REPEATS["quick" if quick else "full"]
        assert steps["train"][1]() == 3 and bc.repeats == 3
