"""piqa.LPIPS (through tune_vqvae) vs the lpips package, on the same images and the same weights:
the real LPIPS v0.1 linear weights (shipped in the lpips wheel) and one random AlexNet backbone
(seeded; the real ImageNet AlexNet cannot be downloaded offline) loaded into both. Values and
gradients (w.r.t. the reconstruction, in model space [-1, 1]) on four scikit-image photos with
Gaussian noise, at 32x32 and 64x64.

    pip install --no-deps --target /tmp/lpips_pkg lpips     # a throwaway copy
    PYTHONPATH=.:/tmp/lpips_pkg python benchmarks/lpips_compare.py
"""

import os
import shutil
import tempfile

import lpips as lp
import torch
import torch.nn.functional as F
import torchvision
from skimage import data as skd

from tune_vqvae.losses import LossConfig, ReconstructionLoss
from tune_vqvae.losses import lpips as ours


def same_weights() -> tuple[ReconstructionLoss, torch.nn.Module]:
    d = tempfile.mkdtemp()
    torch.manual_seed(0)
    alex = torchvision.models.alexnet(weights=None)
    torch.save(alex.state_dict(), os.path.join(d, ours.BACKBONE_FILE))
    shutil.copy(os.path.join(os.path.dirname(lp.__file__), "weights/v0.1/alex.pth"),
                os.path.join(d, ours.LINEAR_FILE))
    os.environ[ours.WEIGHTS_ENV] = d
    mine = ReconstructionLoss(LossConfig("lpips", 1.0), reduction="none")
    # the package's real linear layers, its trunk replaced by the same random AlexNet
    ref = lp.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    for sl in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5):
        for name, mod in sl.named_children():
            mod.load_state_dict(alex.features[int(name)].state_dict())
    return mine, ref.eval()


def photos(size: int) -> torch.Tensor:
    ims = [torch.from_numpy(f()).permute(2, 0, 1).float()[None] / 255
           for f in (skd.astronaut, skd.chelsea, skd.coffee, skd.rocket)]
    return torch.cat([F.interpolate(im, size=(size, size), mode="area") for im in ims])


def main():
    mine, ref = same_weights()
    for size in (32, 64):
        x01 = photos(size)
        g = torch.Generator().manual_seed(1)
        for noise in (0.02, 0.1, 0.3):
            # off the edges of our [0, 1] clamp, where its gradient is cut by design
            y01 = (x01 + noise * torch.randn(x01.shape, generator=g)).clamp(0.005, 0.995)
            x, y = x01 * 2 - 1, (y01 * 2 - 1).requires_grad_(True)  # model space [-1, 1]
            a = mine.perceptual(y, x)
            a.sum().backward()
            ga, y.grad = y.grad.clone(), None
            b = ref(y, x).flatten()  # the lpips package takes [-1, 1]
            b.sum().backward()
            rel = ((a - b).abs() / b.abs()).max().item()
            grel = ((ga - y.grad).norm() / y.grad.norm()).item()
            print(f"{size}x{size} noise {noise}: piqa {[round(v, 5) for v in a.tolist()]}  "
                  f"lpips {[round(v, 5) for v in b.tolist()]}  max rel diff {rel:.2e}  "
                  f"grad rel diff {grel:.2e}")


if __name__ == "__main__":
    main()
