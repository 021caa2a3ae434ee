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
