"""VQ-VAE (van den Oord et al. 2017) as in the PyTorch reproduction of Kumar, Deleu & Racah.

Encoder: two 4x4 stride-2 convolutions and two residual blocks (32x32 -> 8x8 latents).
Quantizer: nearest of K codebook vectors, straight-through gradient to the encoder.
Decoder: mirrors the encoder, tanh output in [-1, 1].
Loss (the training loop adds it): recon + ||sg[z_e] - z_q||^2 + beta * ||z_e - sg[z_q]||^2.

`groups=G` builds G independent VQ-VAEs as one network (grouped convolutions, per-model
BatchNorm channels, G codebooks): the fused multi-weight training in `fused.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError

DOWNSAMPLING = 4  # the encoder's two stride-2 convolutions: image sides must be multiples of it


@dataclass
class ModelConfig:
    hidden: int = 256  # channels everywhere and codebook vector size (reference: 256)
    codebook_size: int = 512  # K
    beta: float = 1.0  # commitment loss weight
    in_channels: int = 3

    def __post_init__(self):
        if self.hidden < 1 or self.codebook_size < 2:
            raise UserError("model needs --hidden >= 1 and --codebook-size >= 2")
        if not self.beta >= 0:
            raise UserError(f"--beta must be >= 0, got {self.beta}")


class ResBlock(nn.Module):
    def __init__(self, dim: int, groups: int = 1):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(dim, dim, 3, 1, 1, groups=groups),
            nn.BatchNorm2d(dim),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 1, groups=groups),
            nn.BatchNorm2d(dim),
        )

    def forward(self, x):
        return x + self.block(x)


class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook lookup with a straight-through estimator.

    With `groups=G` the latent channels are G models' D-dim latents side by side and each
    model has its own K codes (rows g*K .. (g+1)*K of one embedding table).
    """

    def __init__(self, num_codes: int, dim: int, groups: int = 1):
        super().__init__()
        self.num_codes, self.groups = num_codes, groups
        self.codebook = nn.Embedding(groups * num_codes, dim)
        self.codebook.weight.data.uniform_(-1 / num_codes, 1 / num_codes)

    @torch.autocast("cuda", enabled=False)  # distances in fp32: bf16 ties pick wrong codes
    def nearest_codes(self, z_e: torch.Tensor) -> torch.Tensor:
        """Indices (G, N, H, W), in 0..K-1, of the closest of each model's codes to each
        latent vector of z_e (N, G*D, H, W).

        ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2 as one batched matmul: memory O(N*H*W*K),
        never a broadcast (N*H*W, K, D) difference tensor.
        """
        n, _, h, w = z_e.shape
        g, d = self.groups, self.codebook.embedding_dim
        flat = z_e.detach().float().view(n, g, d, h, w).permute(1, 0, 3, 4, 2).reshape(g, -1, d)
        codes = self.codebook.weight.detach().float().view(g, -1, d)
        dist = torch.baddbmm(
            (codes * codes).sum(2)[:, None, :] + (flat * flat).sum(2, keepdim=True),
            flat,
            codes.transpose(1, 2),
            alpha=-2.0,
        )
        return dist.argmin(2).view(g, n, h, w)

    def forward(self, z_e: torch.Tensor):
        """Returns (z_q_st, z_q, codes).

        z_q_st: z_q in the forward pass, gradient copied to z_e (the straight-through path
        the decoder uses); z_q: the selected codes, differentiable w.r.t. the codebook (for
        the codebook loss); codes: (N, H, W) code indices, (N, G, H, W) with groups.
        """
        codes = self.nearest_codes(z_e)  # (G, N, H, W)
        offsets = torch.arange(self.groups, device=codes.device).view(-1, 1, 1, 1) * self.num_codes
        z_q = self.codebook(codes + offsets)  # (G, N, H, W, D), fp32: the codebook loss needs it exact
        z_q = z_q.permute(1, 0, 4, 2, 3).flatten(1, 2)  # (N, G*D, H, W)
        z_q_st = z_e + (z_q.to(z_e.dtype) - z_e).detach()
        codes = codes.transpose(0, 1)
        return z_q_st, z_q, codes[:, 0] if self.groups == 1 else codes


def codebook_usage(codes: torch.Tensor, num_codes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Perplexity exp(H(p)) of the code histogram, and the fraction of codes used."""
    counts = torch.bincount(codes.flatten(), minlength=num_codes).float()
    p = counts / counts.sum()
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return entropy.exp(), (counts > 0).float().mean()


def _init_weights(m: nn.Module):
    # The reference's init: Xavier-uniform convolutions, zero biases.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


class VQVAE(nn.Module):
    def __init__(self, cfg: ModelConfig, groups: int = 1):
        super().__init__()
        self.cfg, self.groups = cfg, groups
        g, c, d = groups, cfg.in_channels, cfg.hidden * groups
        self.encoder = nn.Sequential(
            nn.Conv2d(c * g, d, 4, 2, 1, groups=g),
            nn.BatchNorm2d(d),
            nn.ReLU(),
            nn.Conv2d(d, d, 4, 2, 1, groups=g),
            ResBlock(d, g),
            ResBlock(d, g),
        )
        self.quantizer = VectorQuantizer(cfg.codebook_size, cfg.hidden, g)
        self.decoder = nn.Sequential(
            ResBlock(d, g),
            ResBlock(d, g),
            nn.ReLU(),
            nn.ConvTranspose2d(d, d, 4, 2, 1, groups=g),
            nn.BatchNorm2d(d),
            nn.ReLU(),
            nn.ConvTranspose2d(d, c * g, 4, 2, 1, groups=g),
            nn.Tanh(),
        )
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor):
        """x (N, C, H, W) in [-1, 1] -> (x_tilde, z_e, z_q, codes); with groups x_tilde is
        (N, G*C, H, W): every model reconstructs the same x."""
        if self.groups > 1:
            x = x.repeat(1, self.groups, 1, 1)
        z_e = self.encoder(x)
        z_q_st, z_q, codes = self.quantizer(z_e)
        return self.decoder(z_q_st), z_e, z_q, codes

    def vq_losses(self, z_e: torch.Tensor, z_q: torch.Tensor):
        """(codebook loss, commitment loss), in fp32; the caller weights commitment by beta."""
        z_e, z_q = z_e.float(), z_q.float()
        return F.mse_loss(z_q, z_e.detach()), F.mse_loss(z_e, z_q.detach())


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
