import torch
import torch.nn.functional as F

from tune_vqvae.model import VQVAE, ModelConfig, VectorQuantizer, codebook_usage


def test_vqvae_shapes_and_output_range():
    model = VQVAE(ModelConfig(hidden=16, codebook_size=32))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    x_tilde, z_e, z_q, codes = model(x)
    assert x_tilde.shape == x.shape and z_e.shape == (2, 16, 8, 8) and codes.shape == (2, 8, 8)
    assert x_tilde.abs().max() <= 1


def test_nearest_code_matches_brute_force():
    vq = VectorQuantizer(64, 8)
    vq.codebook.weight.data.normal_()
    z_e = torch.randn(3, 8, 5, 5)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 8)
    brute = (flat[:, None, :] - vq.codebook.weight[None]).pow(2).sum(-1).argmin(1)
    assert torch.equal(vq.nearest_codes(z_e).flatten(), brute)


def test_straight_through_copies_the_decoder_gradient_to_the_encoder():
    vq = VectorQuantizer(16, 4)
    z_e = torch.randn(2, 4, 3, 3, requires_grad=True)
    z_q_st, z_q, codes = vq(z_e)
    assert torch.allclose(z_q_st, z_q, atol=1e-6)  # forward pass: the quantized vectors
    upstream = torch.randn_like(z_q_st)
    (z_q_st * upstream).sum().backward()
    assert torch.equal(z_e.grad, upstream)  # backward: gradient passed through unchanged
    assert vq.codebook.weight.grad is None  # the decoder path does not train the codebook


def test_codebook_loss_trains_codes_and_commitment_trains_encoder():
    model = VQVAE(ModelConfig(hidden=4, codebook_size=8))
    z_e = torch.randn(2, 4, 3, 3, requires_grad=True)
    _, z_q, _ = model.quantizer(z_e)
    codebook_loss, commitment = model.vq_losses(z_e, z_q)
    expected = F.mse_loss(z_e, z_q).item()
    assert abs(codebook_loss.item() - expected) < 1e-6 and abs(commitment.item() - expected) < 1e-6
    codebook_loss.backward(retain_graph=True)
    assert z_e.grad is None and model.quantizer.codebook.weight.grad.abs().sum() > 0
    model.zero_grad()
    commitment.backward()
    assert z_e.grad.abs().sum() > 0 and model.quantizer.codebook.weight.grad is None


def test_perplexity_and_usage():
    perplexity, used = codebook_usage(torch.arange(8).repeat(10), 16)
    assert abs(perplexity.item() - 8) < 1e-4 and used.item() == 0.5
    perplexity, used = codebook_usage(torch.zeros(50, dtype=torch.long), 16)
    assert abs(perplexity.item() - 1) < 1e-6 and used.item() == 1 / 16
