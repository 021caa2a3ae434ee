"""Fused multi-weight training computes what separate trials compute."""

import pytest
import torch
from conftest import tiny_config

from tune_vqvae.errors import UserError
from tune_vqvae.losses import LossConfig
from tune_vqvae.model import VQVAE, ModelConfig
from tune_vqvae.train import FusedTrainer, Trainer, fuse_state_dicts, member_state_dict


@pytest.mark.parametrize("train_mode", [False, True])
def test_fused_model_is_its_members_side_by_side(train_mode):
    cfg = ModelConfig(hidden=8, codebook_size=16)
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        members.append(VQVAE(cfg).train(train_mode))
    fused = VQVAE(cfg, groups=3).train(train_mode)
    fused.load_state_dict(fuse_state_dicts([m.state_dict() for m in members]))
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    x_tilde, z_e, z_q, codes = fused(x)
    assert x_tilde.shape == (4, 9, 32, 32) and codes.shape == (4, 3, 8, 8)
    for g, m in enumerate(members):
        m_tilde, m_z_e, _, m_codes = m(x)
        torch.testing.assert_close(x_tilde[:, 3 * g:3 * g + 3], m_tilde, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(z_e[:, 8 * g:8 * g + 8], m_z_e, rtol=1e-4, atol=1e-5)
        assert torch.equal(codes[:, g], m_codes)
    # BatchNorm running statistics stay per model, and unfusing gives the members back.
    for g, m in enumerate(members):
        for k, v in member_state_dict(fused.state_dict(), g, 3).items():
            torch.testing.assert_close(v, m.state_dict()[k], rtol=1e-5, atol=1e-6)


def test_fused_training_follows_the_separate_trials(builtin_data):
    weights = [0.25, 2.0]
    fused = FusedTrainer(tiny_config(loss=LossConfig("ssim")), weights, builtin_data)
    separate = [Trainer(tiny_config(loss=LossConfig("ssim", w)), builtin_data) for w in weights]
    batches = list(fused.batches.epoch(0))[:16]
    for step, x in enumerate(batches):
        fused_stats = fused._step(x)
        for g, trainer in enumerate(separate):
            stats = trainer._step(x)
            if step < 4:  # before rounding differences have grown: the same losses
                torch.testing.assert_close(fused_stats[:, g], stats, rtol=1e-4, atol=1e-5)
    # Training is chaotic (a rounding-level difference can flip a code, and Adam scales
    # near-zero gradients up), so after the steps compare reconstructions by distance: each
    # member is far closer to its own separate trial than to the other weight's.
    x = batches[0]
    separate_out = [t.model.eval()(x)[0] for t in separate]
    for g in range(len(weights)):
        out = fused.member(g)(x)[0]
        own, other = ((out - s).abs().mean().item() for s in (separate_out[g], separate_out[1 - g]))
        assert own < other / 10, (g, own, other)


def test_fused_epoch_reports_every_weight(builtin_data):
    rows = FusedTrainer(tiny_config(loss=LossConfig("gmsd"), epochs=1), [0.1, 0.5, 1.0],
                        builtin_data).train_epoch()
    assert [r["weight"] for r in rows] == [0.1, 0.5, 1.0]
    assert all(r["epoch"] == 1 and r["train_loss"] > r["train_mse"] > 0 for r in rows)


@pytest.mark.parametrize("loss", [LossConfig("mse"), LossConfig("ssim", with_mse=False)])
def test_fused_training_needs_mse_plus_a_perceptual_loss(loss, builtin_data):
    with pytest.raises(UserError, match="mse \\+ w \\* L"):
        FusedTrainer(tiny_config(loss=loss), [0.5, 1.0], builtin_data)
