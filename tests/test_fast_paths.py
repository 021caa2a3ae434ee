"""The optimised training path computes what the plain path computes."""

import pytest
import torch
from conftest import tiny_config

from tune_vqvae.losses import LossConfig
from tune_vqvae.train import Trainer


@pytest.mark.slow
def test_compiled_step_matches_plain_step(builtin_data):
    cfg = dict(loss=LossConfig("ssim", 0.5))
    plain = Trainer(tiny_config(**cfg), builtin_data)
    compiled = Trainer(tiny_config(**cfg, compile=True), builtin_data)
    x = next(iter(plain.batches.epoch(0)))
    torch.testing.assert_close(compiled._step(x), plain._step(x), rtol=1e-4, atol=1e-6)
    # Gradients, not updated weights: Adam turns rounding in near-zero gradients into
    # full-size steps, so weights after a step can differ by ~lr in a few elements.
    # Conv biases before BatchNorm have a true gradient of 0 (noise), hence a global scale.
    scale = max(p.grad.abs().max().item() for p in plain.model.parameters())
    for a, b in zip(plain.model.parameters(), compiled.model.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-4 * scale)


def test_fused_adam_step_matches_the_multi_tensor_step(builtin_data):
    fused = Trainer(tiny_config(), builtin_data)
    loop = Trainer(tiny_config(fused_adam=False), builtin_data)
    assert fused.opt.defaults["fused"] and not loop.opt.defaults["fused"]
    x = next(iter(fused.batches.epoch(0)))
    torch.testing.assert_close(fused._step(x), loop._step(x))
    # One step from equal gradients: the same update up to rounding (after more steps Adam
    # would magnify rounding in near-zero gradients, see above).
    for a, b in zip(fused.model.parameters(), loop.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_resumed_run_keeps_and_records_its_checkpoints_adam(builtin_data, tmp_path):
    first = Trainer(tiny_config(), builtin_data)
    first.save_checkpoint(tmp_path / "checkpoint.pt")
    resumed = Trainer(tiny_config(fused_adam=False), builtin_data)
    resumed.load_checkpoint(tmp_path / "checkpoint.pt")
    assert resumed.opt.param_groups[0]["fused"] and resumed.cfg.fused_adam


def test_runs_compile_with_cuda_graphs_on_cuda_and_stay_eager_on_cpu_unless_asked():
    from tune_vqvae.errors import UserError
    from tune_vqvae.train import TrainConfig, compile_mode

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert compile_mode(TrainConfig(), cpu) is None
    assert compile_mode(TrainConfig(), cuda) == "reduce-overhead"
    assert compile_mode(TrainConfig(compile=True), cpu) == "default"
    assert compile_mode(TrainConfig(compile=False), cuda) is None
    assert compile_mode(TrainConfig(compile_mode="max-autotune"), cuda) == "max-autotune"
    with pytest.raises(UserError, match="drop --no-compile"):
        TrainConfig(compile=False, compile_mode="reduce-overhead")
