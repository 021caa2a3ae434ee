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


def test_ms_ssim_works_at_32x32_where_piqa_defaults_fail():
    a, b = unit(images(4)), unit(images(5))
    with pytest.raises(RuntimeError):
        piqa.MS_SSIM()(a, b)  # 11-tap window on the 8x8 third scale: why we choose our own
    value = ms_ssim(32)(a, b)
    assert 0 < value.item() < 1
    assert ms_ssim(32).weights.numel() == 3 and ms_ssim(256).weights.numel() == 5


@pytest.mark.parametrize("bad", [dict(name="lpips"), dict(name="ssim", weight=0),
                                 dict(name="ssim", weight=-1), dict(name="mse", with_mse=False)])
def test_bad_loss_config_names_the_valid_choices(bad):
    with pytest.raises(UserError) as e:
        LossConfig(**bad)
    assert "ssim" in str(e.value) or "weight" in str(e.value)
    if bad["name"] == "lpips":
        assert all(n in str(e.value) for n in LOSSES)
