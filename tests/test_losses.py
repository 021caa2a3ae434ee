import math

import piqa
import pytest
import torch

from tune_vqvae.errors import UserError
from tune_vqvae.losses import LOSSES, PERCEPTUAL_LOSSES, LossConfig, ReconstructionLoss, ms_ssim


def images(seed, n=4, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1  # model space [-1, 1]


VARIANTS = [("mse", True)] + [(n, m) for n in PERCEPTUAL_LOSSES for m in (True, False)]


@pytest.mark.parametrize("name,with_mse", VARIANTS)
def test_loss_is_zero_on_identical_images_with_finite_gradients(name, with_mse):
    x = images(0)
    y = x.clone().requires_grad_(True)
    total, _, _ = ReconstructionLoss(LossConfig(name, 0.5, with_mse))(y, x)
    total.backward()
    assert abs(total.item()) < 1e-5
    assert torch.isfinite(y.grad).all()


@pytest.mark.parametrize("name", LOSSES)
def test_loss_is_positive_and_differentiable_on_random_images(name):
    x, y = images(0), images(1).requires_grad_(True)
    total, mse, _ = ReconstructionLoss(LossConfig(name, 0.5))(y, x)
    total.backward()
    assert math.isfinite(total.item()) and total.item() > mse.item() - 1e-7 > 0
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def unit(x):
    return (x + 1) / 2


PIQA_AS_LOSS = {  # the convention, spelled out against piqa's own modules
    "psnr": lambda a, b: 80.0 - piqa.PSNR()(a, b),
    "ssim": lambda a, b: 1 - piqa.SSIM()(a, b),
    "ms_ssim": lambda a, b: 1 - piqa.MS_SSIM(window_size=7, weights=torch.tensor(
        [0.0448, 0.2856, 0.3001]) / 0.6305)(a, b),
    "haarpsi": lambda a, b: 1 - piqa.HaarPSI()(a, b),
    "gmsd": lambda a, b: piqa.GMSD()(a, b),
    "ms_gmsd": lambda a, b: piqa.MS_GMSD()(a, b),
}


@pytest.mark.parametrize("name", PERCEPTUAL_LOSSES)
def test_loss_equals_piqa_through_the_convention(name):
    x, y = images(2), images(3)
    fn = ReconstructionLoss(LossConfig(name, 0.25))
    expected = PIQA_AS_LOSS[name](unit(y), unit(x))
    assert fn.perceptual(y, x).item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-6)
    total, mse, perceptual = fn(y, x)
    assert total.item() == pytest.approx(mse.item() + 0.25 * perceptual.item(), rel=1e-6)
    alone, _, _ = ReconstructionLoss(LossConfig(name, 0.25, with_mse=False))(y, x)
    assert alone.item() == pytest.approx(perceptual.item(), rel=1e-6)


PIQA_PER_IMAGE = {  # piqa's own modules, as every built-in metric must compute them
    "psnr": lambda: piqa.PSNR(reduction="none"),
    "ssim": lambda: piqa.SSIM(reduction="none"),
    "ms_ssim": lambda: piqa.MS_SSIM(window_size=7, weights=torch.tensor(
        [0.0448, 0.2856, 0.3001]) / 0.6305, reduction="none"),
    "haarpsi": lambda: piqa.HaarPSI(reduction="none"),
    "gmsd": lambda: piqa.GMSD(reduction="none"),
    "ms_gmsd": lambda: piqa.MS_GMSD(reduction="none"),
}


@pytest.mark.parametrize("size", [32, 50])
@pytest.mark.parametrize("name", PERCEPTUAL_LOSSES)
def test_built_metric_equals_piqas_values_and_gradients(name, size):
    """Our builds (HaarPSI's kernels held as buffers) compute piqa's metric, per image."""
    from tune_vqvae.losses import METRICS

    g = torch.Generator().manual_seed(size)
    x = torch.rand(3, 3, size, size, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    ours_in, ref_in = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    ours, ref = METRICS[name].build(size)(ours_in, x), PIQA_PER_IMAGE[name]()(ref_in, x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-4, atol=1e-6)


def test_ms_ssim_works_at_32x32_where_piqa_defaults_fail():
    a, b = unit(images(4)), unit(images(5))
    with pytest.raises(RuntimeError):
        piqa.MS_SSIM()(a, b)  # 11-tap window on the 8x8 third scale: why we choose our own
    value = ms_ssim(32)(a, b)
    assert 0 < value.item() < 1
    assert ms_ssim(32).weights.numel() == 3 and ms_ssim(256).weights.numel() == 5


@pytest.mark.parametrize("bad", [dict(name="fancy"), dict(name="ssim", weight=0),
                                 dict(name="ssim", weight=-1), dict(name="mse", with_mse=False)])
def test_bad_loss_config_names_the_valid_choices(bad):
    with pytest.raises(UserError) as e:
        LossConfig(**bad)
    assert "ssim" in str(e.value) or "weight" in str(e.value)
    if bad["name"] == "fancy":
        assert all(n in str(e.value) for n in (*PERCEPTUAL_LOSSES, "lpips", "module:factory"))


# --- the convention, as a plugin is checked: every built-in passes --------------------------

@pytest.mark.parametrize("name", PERCEPTUAL_LOSSES)
def test_every_builtin_metric_passes_the_plugin_convention_check(name):
    from tune_vqvae.losses import METRICS, check_convention

    check_convention(METRICS[name], name)


def _smallest_size_ok(metric, name, size) -> bool:
    """Whether the metric keeps the convention on size x size images (its min_size ignored)."""
    import dataclasses

    from tune_vqvae.losses import check_convention

    try:
        check_convention(dataclasses.replace(metric, min_size=1), name, size)
    except UserError:
        return False
    return True


@pytest.mark.parametrize("name", [*PERCEPTUAL_LOSSES, "lpips"])
def test_declared_min_size_is_the_smallest_image_piqa_takes(name, request):
    """Each built-in's min_size is piqa's real limit: it works there and fails one pixel below."""
    from tune_vqvae.losses import METRICS, NETWORK_METRICS

    if name == "lpips":
        request.getfixturevalue("lpips_weights")
    metric = {**METRICS, **NETWORK_METRICS}[name]
    assert _smallest_size_ok(metric, name, metric.min_size)
    assert metric.min_size == 1 or not _smallest_size_ok(metric, name, metric.min_size - 1)


def test_a_run_needs_the_largest_minimum_of_its_loss_val_ssim_and_the_model(lpips_weights):
    from tune_vqvae.train import check_image_size, min_image_size

    assert min_image_size("gmsd") == (11, "the SSIM behind val_ssim, which every run reports")
    assert min_image_size("ssim") == (11, "the smallest image ssim takes")  # the loss named on a tie
    assert min_image_size("ssim+lpips") == (31, "the smallest image lpips takes")
    check_image_size("ssim", 12, "data")
    with pytest.raises(UserError, match=r"data are 28x28, too small for --loss lpips: it needs at "
                                        r"least 31x31 .*use images of 32x32 or larger"):
        check_image_size("lpips", 28, "data")


def test_a_plugins_min_size_is_checked_and_its_convention_probed_there():
    from tune_vqvae.losses import Metric, check_convention

    def build(size):
        if size < 40:
            raise ValueError(f"{size} < 40")
        return lambda a, b: (a - b).abs().flatten(1).mean(1)

    check_convention(Metric("big", "distance", 0.0, build, min_size=40), "plugin")  # probed at 40
    with pytest.raises(UserError, match="fails on 32x32"):
        check_convention(Metric("big", "distance", 0.0, build), "plugin")
    with pytest.raises(UserError, match="min_size must be a whole number >= 1"):
        check_convention(Metric("big", "distance", 0.0, build, min_size=0), "plugin")


# --- LPIPS: mechanics with random-weight files (real values need the real weights) ----------

@pytest.fixture
def lpips_weights(tmp_path, monkeypatch):
    """Random LPIPS weights files in a directory named by the env var: the network and its cost
    are LPIPS's, its values mean nothing."""
    from tune_vqvae.losses import lpips

    d = lpips.write_random_weights(tmp_path / "lpips")
    monkeypatch.setenv(lpips.WEIGHTS_ENV, str(d))
    return d


def test_lpips_weights_flag_names_the_directory_or_what_is_missing(tmp_path, monkeypatch):
    """--lpips-weights DIR (train and search CLIs): both files there, else one line that names
    the missing file and the flag; this process's loss then reads DIR."""
    from tune_vqvae.losses import lpips

    monkeypatch.setenv(lpips.WEIGHTS_ENV, "unused")  # restored after the test
    d = lpips.write_random_weights(tmp_path / "w")
    lpips.use_weights_dir(str(d))
    assert lpips.weights_env(str(d)) == {lpips.WEIGHTS_ENV: str(d)}
    assert lpips.weight_files(download=False) == {f: d / f for f in lpips.URLS}
    (d / lpips.LINEAR_FILE).unlink()
    with pytest.raises(UserError, match=rf"{lpips.LINEAR_FILE}: not in '{d}' \(--lpips-weights\)"):
        lpips.use_weights_dir(str(d))


def test_lpips_is_a_loss_by_the_convention(lpips_weights):
    from tune_vqvae.losses import check_convention, find_metric

    check_convention(find_metric("lpips"), "lpips")
    x = images(0)
    y = x.clone().requires_grad_(True)
    total, _, perceptual = ReconstructionLoss(LossConfig("lpips", 0.5))(y, x)
    assert abs(perceptual.item()) < 1e-6
    z = images(1).requires_grad_(True)
    total, mse, perceptual = ReconstructionLoss(LossConfig("lpips", 0.5))(z, x)
    total.backward()
    assert perceptual.item() > 0 and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_lpips_from_local_files_equals_piqa_reading_the_torch_hub_cache(lpips_weights, tmp_path, monkeypatch):
    """Our offline construction is piqa's LPIPS: the same value as piqa.LPIPS() built from the
    same two files placed in the torch hub cache (where piqa looks before downloading)."""
    import shutil

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    for f in lpips_weights.iterdir():
        shutil.copy(f, hub / "checkpoints" / f.name)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    x, y = unit(images(2)), unit(images(3))
    ours = ReconstructionLoss(LossConfig("lpips", 1.0)).perceptual(images(3), images(2))
    assert ours.item() == pytest.approx(piqa.LPIPS()(y, x).item(), rel=1e-6)
    monkeypatch.delenv("TUNE_VQVAE_LPIPS_WEIGHTS")  # the hub cache is found without the env var
    assert ReconstructionLoss(LossConfig("lpips", 1.0)).perceptual(images(3), images(2)).item() \
        == pytest.approx(ours.item(), rel=1e-6)


def test_lpips_without_weights_names_the_missing_files(tmp_path, monkeypatch):
    from tune_vqvae.losses import lpips

    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / lpips.LINEAR_FILE).write_bytes(b"")
    monkeypatch.setenv(lpips.WEIGHTS_ENV, str(tmp_path / "partial"))
    with pytest.raises(UserError, match=f"weights files {lpips.BACKBONE_FILE}: not in .*partial"):
        LossConfig("lpips")
    monkeypatch.delenv(lpips.WEIGHTS_ENV)  # the hub cache, empty, and no network
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(lpips, "fetch_url",
                        lambda url, dest, timeout: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError) as e:
        LossConfig("lpips")
    assert f"{lpips.BACKBONE_FILE}, {lpips.LINEAR_FILE}" in str(e.value) and "download failed" in str(e.value)
    assert lpips.WEIGHTS_ENV in str(e.value) and "\n" not in str(e.value)


def test_a_damaged_lpips_weights_file_is_one_line(lpips_weights):
    from tune_vqvae.losses import lpips

    (lpips_weights / lpips.BACKBONE_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot be read"):
        ReconstructionLoss(LossConfig("lpips"))


def test_train_cli_refuses_lpips_without_weights(tmp_path, monkeypatch, capsys):
    from tune_vqvae.train._cli import main

    monkeypatch.setenv("TUNE_VQVAE_LPIPS_WEIGHTS", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        main(["--loss", "lpips", "--out", str(tmp_path / "run"), "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "alexnet-owt-7be5be79.pth, alex.pth" in err[0]
    assert not (tmp_path / "run").exists()
