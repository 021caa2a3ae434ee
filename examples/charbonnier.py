"""An example loss plugin: the Charbonnier loss (a smooth L1), a distance.

    charbonnier(x_hat, x) = mean over pixels of sqrt((x_hat - x)^2 + eps^2) - eps

It is >= 0, 0 on identical images and lower is better, so it declares kind="distance",
best=0. Use it without installing anything, from a clone's root:

    python -m tune_vqvae.train --loss examples.charbonnier:factory --weight 0.5
    python -m tune_vqvae.search --loss examples.charbonnier:factory --smoke

or install it (`pip install ./examples`: the pyproject.toml there registers the entry point
`charbonnier` in the group `tune_vqvae.losses`) and name it: `--loss charbonnier`.
"""

import torch
from torch import nn

from tune_vqvae.losses import Metric

EPSILON = 1e-3  # Charbonnier's eps: the loss is quadratic below it, linear above


class Charbonnier(nn.Module):
    """One value per image, shape (N,): what a metric's build() must return."""

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        d = ((x_hat - x).square() + EPSILON**2).sqrt() - EPSILON
        return d.flatten(1).mean(dim=1)


def factory() -> Metric:
    """What the plugin declares: its name, a distance whose best value is 0, the input range
    it expects ([0, 1]; the search maps the model's [-1, 1] images to it), and how to build
    it for an image size."""
    return Metric(name="charbonnier", kind="distance", best=0.0,
                  build=lambda image_size: Charbonnier(), input_range=(0.0, 1.0))
