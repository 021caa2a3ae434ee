"""The compiled training step keeps what CUDA graphs need, checked on a CPU.

Inductor skips CUDA graphs for a compiled graph that holds a CPU tensor or op ("skipping
cudagraphs due to cpu device") or an op it cannot capture, and a step that graph-breaks is
several graphs. Here the step is traced on the `meta` device: every tensor derived from the
model, the loss modules or the batch is on meta, while a tensor built without a device
(piqa's HaarPSI built its kernels with torch.ones / torch.tensor at every call) lands on the
CPU, as it would next to a GPU. And dynamo keeps at most `recompile_limit` graphs per code
object: every trainer must compile its own (`train.compile_own`).
"""

import pytest
import torch
from conftest import tiny_config
from functorch.compile import make_boxed_func
from torch._dynamo.backends.common import aot_autograd
from torch._dynamo.testing import CompileCounter
from torch._inductor.utils import any_is_symbolic, get_first_incompatible_cudagraph_node

from tune_vqvae.losses import LOSSES, LossConfig
from tune_vqvae.train import Trainer, compile_own


class GraphRecorder:
    """A torch.compile backend that keeps dynamo's graphs and AOT autograd's forward and
    backward graphs (what inductor would compile) and runs them as they are."""

    def __init__(self):
        self.dynamo, self.aot = [], []
        self._aot = aot_autograd(fw_compiler=self._keep, bw_compiler=self._keep)

    def _keep(self, gm, example_inputs):
        self.aot.append(gm)
        return make_boxed_func(gm.forward)

    def __call__(self, gm, example_inputs):
        self.dynamo.append(gm)
        return self._aot(gm, example_inputs)


def off_device_nodes(gm: torch.fx.GraphModule, device: str) -> list[str]:
    """Nodes of `gm` whose tensors (or tensor constants) are not on `device`, with their source."""
    found = []
    for node in gm.graph.nodes:
        value = getattr(gm, node.target) if node.op == "get_attr" else node.meta.get("val")
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, torch.Tensor) and v.device.type != device for v in values):
            trace = (node.meta.get("stack_trace") or "").strip().splitlines()[-2:]
            found.append(f"{node.format_node()}  <- {' / '.join(s.strip() for s in trace)}")
    return found


@pytest.fixture
def lpips_weights(tmp_path, monkeypatch):
    from tune_vqvae.losses import lpips

    monkeypatch.setenv(lpips.WEIGHTS_ENV, str(lpips.write_random_weights(tmp_path / "lpips")))


@pytest.mark.slow
@pytest.mark.parametrize("name", [*LOSSES, "lpips", "ssim+gmsd"])
def test_every_builtin_losss_compiled_step_is_one_graph_on_the_inputs_device(name, builtin_data, request):
    if name == "lpips":
        request.getfixturevalue("lpips_weights")
    trainer = Trainer(tiny_config(loss=LossConfig(name, 0.5), batch_size=4), builtin_data)
    trainer.model.to("meta")
    trainer.loss_fn.to("meta")
    x = next(iter(trainer.batches.epoch(0))).to("meta")
    graphs = GraphRecorder()
    compile_own(trainer._forward_losses, backend=graphs)(x)[0].backward()
    assert len(graphs.dynamo) == 1, f"{name}: the step graph-breaks into {len(graphs.dynamo)} graphs"
    assert len(graphs.aot) == 2  # forward and backward
    for gm in graphs.aot:
        off = off_device_nodes(gm, "meta")
        assert not off, f"{name}: tensors made on the CPU inside the compiled step:\n" + "\n".join(off[:5])
        assert get_first_incompatible_cudagraph_node(gm) is None


def test_the_recorder_finds_piqas_per_call_kernels():
    """The check above can fail: piqa's own HaarPSI builds CPU kernels inside the graph."""
    import piqa

    graphs = GraphRecorder()
    metric = piqa.HaarPSI().to("meta")
    x = torch.rand(2, 3, 16, 16, device="meta", requires_grad=True)
    torch.compile(metric, backend=graphs)(x, x.detach()).backward()
    off = [n for gm in graphs.aot for n in off_device_nodes(gm, "meta")]
    assert any("haar_kernel" in n for n in off)


class Holder:
    """Like a Trainer: a compiled method whose guards match an attribute by id."""

    def __init__(self):
        self.autocast = torch.autocast("cpu", enabled=False)

    def step(self, x):
        with self.autocast:
            return x * 2


def test_compile_own_gives_every_instance_its_own_graphs():
    x = torch.ones(3)
    with torch._dynamo.config.patch(recompile_limit=2):
        shared = CompileCounter()
        for _ in range(4):
            torch.compile(Holder().step, backend=shared)(x)
        own = CompileCounter()
        for _ in range(4):
            compile_own(Holder().step, backend=own)(x)
    assert shared.frame_count == 2  # the limit: later instances ran eager
    assert own.frame_count == 4


@pytest.mark.slow
def test_trainers_in_one_process_all_compile_their_own_static_graphs(builtin_data, monkeypatch):
    """What the H200 overhead benchmark did: its 9th-11th compiled trainers (haarpsi, gmsd,
    ms_gmsd) ran eager, for dynamo's recompile limit of 8 graphs per code object. A trainer
    after one with another batch size must not get symbolic shapes (no CUDA graphs for those)."""
    symbolic, compile_ = [], torch.compile

    def backend(gm, example_inputs):
        symbolic.append(any_is_symbolic(*example_inputs))
        return gm.forward

    monkeypatch.setattr(torch, "compile", lambda fn, mode=None, **kw: compile_(fn, backend=backend, **kw))
    with torch._dynamo.config.patch(recompile_limit=1):
        for name, batch in (("mse", 4), ("psnr", 4), ("mse", 8)):
            trainer = Trainer(tiny_config(loss=LossConfig(name, 0.5), compile=True, batch_size=batch),
                              builtin_data)
            trainer._step(next(iter(trainer.batches.epoch(0))))
    assert symbolic == [False] * 3
