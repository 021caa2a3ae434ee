
import pytest
import torch
from conftest import tiny_config

from tune_vqvae.losses import PERCEPTUAL_LOSSES, LossConfig
from tune_vqvae.train import Trainer


@pytest.mark.parametrize("name", PERCEPTUAL_LOSSES)
def test_training_step_with_each_loss_keeps_everything_finite(name, builtin_data):
    trainer = Trainer(tiny_config(loss=LossConfig(name, 0.5)), builtin_data)
    x = next(iter(trainer.batches.epoch(0)))
    stats = trainer._step(x)
    assert torch.isfinite(stats).all()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_one_epoch_of_mse_lowers_held_out_mse(builtin_data):
    trainer = Trainer(tiny_config(batch_size=16), builtin_data)
    before = trainer.evaluate()["val_mse"]
    metrics = trainer.train_epoch()
    assert metrics["val_mse"] < 0.5 * before
    for key in ("val_psnr", "val_ssim", "perplexity", "images_per_s", "step_ms", "recon_loss_ms"):
        assert metrics[key] > 0
    assert 0 < metrics["recon_loss_ms"] < metrics["step_ms"]


def test_resume_continues_at_next_epoch_with_identical_weights(builtin_data, tmp_path):
    straight = Trainer(tiny_config(), builtin_data)
    straight.train_epoch()
    straight.train_epoch()

    first = Trainer(tiny_config(), builtin_data)
    first.train_epoch()
    first.save_checkpoint(tmp_path / "ckpt.pt")
    resumed = Trainer(tiny_config(), builtin_data)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    assert resumed.epoch == 1
    assert resumed.train_epoch()["epoch"] == 2
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


TIMINGS = {"images_per_s", "step_ms", "recon_loss_ms", "epoch_s"}


def test_same_config_and_seed_give_bitwise_identical_metrics_on_cpu(builtin_data):
    runs = [Trainer(tiny_config(loss=LossConfig("ssim", 0.5)), builtin_data).train_epoch()
            for _ in range(2)]
    a, b = ({k: v for k, v in m.items() if k not in TIMINGS} for m in runs)
    assert a == b
    other = Trainer(tiny_config(loss=LossConfig("ssim", 0.5), seed=1), builtin_data).train_epoch()
    assert other["val_mse"] != a["val_mse"]
