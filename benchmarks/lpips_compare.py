"""piqa.LPIPS (through tune_vqvae) vs the lpips package, on the same images and the same weights:
the real LPIPS v0.1 linear weights (shipped in the lpips wheel) and one random AlexNet backbone
(seeded; the real ImageNet AlexNet cannot be downloaded offline) loaded into both. Values and
gradients (w.r.t. the reconstruction, in model space [-1, 1]) on four scikit-image photos with
Gaussian noise, at 32x32 and 64x64.

    pip install --no-deps --target /tmp/lpips_pkg lpips     # a throwaway copy
    PYTHONPATH=.:/tmp/lpips_pkg python benchmarks/lpips_compare.py
"""
import os, shutil, tempfile
import torch, torchvision
import lpips as lp
from tune_vqvae.losses import LossConfig, ReconstructionLoss, lpips as ours

d = tempfile.mkdtemp()
torch.manual_seed(0)
alex = torchvision.models.alexnet(weights=None)
torch.save(alex.state_dict(), os.path.join(d, ours.BACKBONE_FILE))
shutil.copy(os.path.join(os.path.dirname(lp.__file__), "weights/v0.1/alex.pth"), os.path.join(d, ours.LINEAR_FILE))
os.environ[ours.WEIGHTS_ENV] = d
mine = ReconstructionLoss(LossConfig("lpips", 1.0), reduction="none")

ref = lp.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)  # random trunk, real lins
feats = alex.features
for i, sl in enumerate([ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5]):
    for name, mod in sl.named_children():
        mod.load_state_dict(feats[int(name)].state_dict())
ref.eval()
from skimage import data as skd
imgs = []
for f in (skd.astronaut, skd.chelsea, skd.coffee, skd.rocket):
    im = torch.from_numpy(f()).permute(2, 0, 1).float() / 255
    imgs.append(torch.nn.functional.interpolate(im[None], size=(64, 64), mode="area")[0])
for size in (32, 64):
    x01 = torch.stack(imgs)
    if size == 32:
        x01 = torch.nn.functional.interpolate(x01, size=32, mode="area")
    g = torch.Generator().manual_seed(1)
    for noise in (0.02, 0.1, 0.3):
        y01 = (x01 + noise * torch.randn(x01.shape, generator=g)).clamp(0.005, 0.995)  # off the clamp's edges
        x, y = x01 * 2 - 1, (y01 * 2 - 1).requires_grad_(True)  # model space [-1, 1]
        a = mine.perceptual(y, x)
        a.sum().backward(); ga = y.grad.clone(); y.grad = None
        b = ref(y, x).flatten()  # lpips takes [-1, 1]
        b.sum().backward(); gb = y.grad.clone()
        rel = ((a - b).abs() / b.abs()).max().item()
        grel = ((ga - gb).norm() / gb.norm()).item()
        print(f"{size}x{size} noise {noise}: piqa {[round(v, 5) for v in a.tolist()]}  lpips {[round(v, 5) for v in b.tolist()]}  max rel diff {rel:.2e}  grad rel diff {grel:.2e}")

