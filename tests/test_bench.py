import json

import pytest

from tune_vqvae.bench import main


@pytest.mark.slow
def test_quick_benchmark_writes_side_by_side_figures(tmp_path):
    assert main(["train", "--quick", "--steps", "2", "--repeats", "1", "--out-dir", str(tmp_path)]) == 0
    assert main(["overhead", "--quick", "--steps", "1", "--repeats", "1",
                 "--out-dir", str(tmp_path / "o")]) == 0
    (train_file,) = tmp_path.glob("*.json")
    train = json.loads(train_file.read_text())["train"]
    assert train["reference"]["speedup_vs_reference"] == 1
    assert train["optimised"]["images_per_s"] > 0 and train["optimised"]["repeats"] == 1
    (overhead_file,) = (tmp_path / "o").glob("*.json")
    overhead = json.loads(overhead_file.read_text())["overhead"]
    assert set(overhead) == {"mse", "psnr", "ssim", "ms_ssim", "haarpsi", "gmsd", "ms_gmsd"}
    assert overhead["mse"]["step_time_vs_mse"] == 1
