"""Fused multi-weight training: G weights of one loss trained as one grouped VQ-VAE.

Trials of one loss differ only in w, so G of them can run as one network: grouped
convolutions (each model sees only its own channels), per-model BatchNorm channels, G
codebooks, and one optimizer step over the sum of the G losses. The models share no
parameter, so the gradient of the sum with respect to model g's parameters is model g's
own gradient, and Adam is elementwise: member g follows the same trajectory as a separate
trial with weight w_g, the same seed and the same batches: in exact arithmetic; in floating
point the same to rounding at first, then drifting apart as training amplifies rounding
(tests/test_fused.py checks both). A member whose loss diverges (NaN) stops all G.

The point is speed on a GPU: G small kernels per layer become one G-times-wider one.
`python -m tune_vqvae.bench fused` measures it against G separate trials.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import ImageData
from ..errors import UserError
from ..losses import ReconstructionLoss
from ..model import VQVAE
from ._trainer import TRAIN_STATS, TrainConfig, Trainer


def fuse_state_dicts(states: list[dict]) -> dict:
    """State dict of VQVAE(groups=G) from G plain VQVAE state dicts.

    Every grouped parameter (convolution weights, including ConvTranspose2d's
    (in, out/G, k, k) layout, biases, BatchNorm channels, codebook rows) stacks model g's
    block at index g along dim 0; scalars (BatchNorm's batch counter) are shared.
    """
    return {k: torch.cat([s[k] for s in states]) if v.dim() else v.clone()
            for k, v in states[0].items()}


def member_state_dict(fused_state: dict, g: int, groups: int) -> dict:
    """The plain VQVAE state dict of model g of a fused one (inverse of fuse_state_dicts)."""
    return {k: v.chunk(groups)[g].clone() if v.dim() else v.clone() for k, v in fused_state.items()}


def per_model_mse(a: torch.Tensor, b: torch.Tensor, groups: int) -> torch.Tensor:
    """(G,) mean squared error of each model's channels of a and b, (N, G*C, H, W)."""
    diff = (a.float() - b.float()).unflatten(1, (groups, -1))
    return diff.square().mean((0, 2, 3, 4))


class FusedLoss(nn.Module):
    """(G,) reconstruction losses mse_g + w_g * L_g of G reconstructions of the same batch."""

    def __init__(self, per_image: ReconstructionLoss, weights: list[float]):
        super().__init__()
        self.per_image = per_image  # built with reduction="none"
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))

    def forward(self, x_tilde: torch.Tensor, x: torch.Tensor):
        """x_tilde (N, G*C, H, W), x (N, C, H, W) -> (total, mse, perceptual), each (G,)."""
        g = len(self.weights)
        x_all = x.repeat(1, g, 1, 1)
        mse = per_model_mse(x_tilde, x_all, g)
        # Per image, then the mean over the batch: what piqa's reduction="mean" gives a trial.
        per_image = self.per_image.perceptual(x_tilde.unflatten(1, (g, -1)).flatten(0, 1),
                                              x_all.unflatten(1, (g, -1)).flatten(0, 1))
        perceptual = per_image.view(len(x), g).mean(0)
        return mse + self.weights * perceptual, mse, perceptual


class FusedTrainer(Trainer):
    """Trains `weights` of cfg.loss (mse + w * L) at once; cfg.loss.weight is ignored.

    Training only: `member(g)` gives model g as a plain VQVAE, to evaluate, score or save
    with the single-model tools.
    """

    def __init__(self, cfg: TrainConfig, weights: list[float], data: ImageData | None = None):
        if cfg.loss.name == "mse" or not cfg.loss.with_mse:
            raise UserError("fused training needs mse + w * L with a perceptual loss L")
        if len(weights) < 1 or not all(w > 0 for w in weights):
            raise UserError(f"fused training needs one or more weights > 0, got {weights}")
        self.weights = [float(w) for w in weights]
        super().__init__(cfg, data)

    def _build_model(self) -> VQVAE:
        # Every member starts from the initial weights a separate trial with this seed gets.
        member = VQVAE(self.cfg.model)
        fused = VQVAE(self.cfg.model, groups=len(self.weights))
        fused.load_state_dict(fuse_state_dicts([member.state_dict()] * len(self.weights)))
        return fused

    def _build_loss(self) -> FusedLoss:
        return FusedLoss(ReconstructionLoss(self.cfg.loss, self.data.image_size, reduction="none"),
                         self.weights)

    def _forward_losses(self, x: torch.Tensor) -> torch.Tensor:
        """TRAIN_STATS (rows) of each model (columns) on batch x; row 0 is minimised."""
        g = len(self.weights)
        with self.autocast:
            x_tilde, z_e, z_q, _ = self.model(x)
        recon, mse, _ = self.loss_fn(x_tilde, x)
        vq, commit = per_model_mse(z_q, z_e.detach(), g), per_model_mse(z_e, z_q.detach(), g)
        loss = recon + vq + self.cfg.model.beta * commit
        return torch.stack([loss, recon, mse, vq, commit])

    def _minimised(self, stats: torch.Tensor) -> torch.Tensor:
        # The sum of the G losses: the models share no parameter, so each gets its own gradient.
        return stats[0].sum()

    def train_epoch(self) -> list[dict]:
        """One epoch; each model's mean TRAIN_STATS, its weight and the shared throughput."""
        means, epoch_s, _ = self._train_steps()
        images_per_s = len(self.batches) * self.batches.batch_size * len(self.weights) / epoch_s
        return [{"epoch": self.epoch, "weight": w, **dict(zip(TRAIN_STATS, col.tolist())),
                 "images_per_s": images_per_s, "epoch_s": epoch_s}
                for w, col in zip(self.weights, means.T)]

    def member(self, g: int) -> VQVAE:
        model = VQVAE(self.cfg.model).to(self.device)
        model.load_state_dict(member_state_dict(self.model.state_dict(), g, len(self.weights)))
        return model.eval()
