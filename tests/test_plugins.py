"""Loss plugins: `module:factory`, entry points, the convention check on load, and a search
with the example plugin (examples/charbonnier.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tune_vqvae.errors import UserError
from tune_vqvae.losses import LossConfig, ReconstructionLoss, find_metric
from tune_vqvae.losses.plugins import load_plugin

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = "examples.charbonnier:factory"


@pytest.fixture(autouse=True)
def fresh_plugins():
    load_plugin.cache_clear()  # each test imports its own plugin modules
    yield
    load_plugin.cache_clear()


def test_the_example_plugin_is_a_loss_by_its_declaration():
    metric = find_metric(EXAMPLE)
    declared = (metric.name, metric.kind, metric.best, metric.input_range)
    assert declared == ("charbonnier", "distance", 0.0, (0, 1))
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y = (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)
    total, mse, perceptual = ReconstructionLoss(LossConfig(EXAMPLE, 0.5))(y, x)
    d = ((y - x) / 2).square()  # [0, 1] images: half the model-space difference
    assert perceptual.item() == pytest.approx(((d + 1e-6).sqrt() - 1e-3).mean().item(), rel=1e-5)
    assert total.item() == pytest.approx(mse.item() + 0.5 * perceptual.item(), rel=1e-6)


# A plugin module written per test: (declaration, forward) -> a factory.
PLUGIN = """
import torch
from tune_vqvae.losses import Metric

def forward(a, b):
    {forward}

def factory():
    return Metric(name={name!r}, kind={kind!r}, best={best}, build=lambda size: forward,
                  input_range={input_range})
"""
MEAN_ABS = "return (a - b).abs().flatten(1).mean(1)"


def plugin(tmp_path, monkeypatch, module="myloss", name="myloss", kind="distance", best=0.0,
           input_range=(0.0, 1.0), forward=MEAN_ABS) -> str:
    (tmp_path / f"{module}.py").write_text(PLUGIN.format(
        forward=forward, name=name, kind=kind, best=best, input_range=input_range))
    monkeypatch.syspath_prepend(str(tmp_path))  # (also invalidates importlib's caches)
    monkeypatch.delitem(sys.modules, module, raising=False)  # a previous test's module of that name
    return f"{module}:factory"


def test_a_similarity_plugin_in_another_input_range(tmp_path, monkeypatch):
    spec = plugin(tmp_path, monkeypatch, kind="similarity", best=2.0, input_range=(-1.0, 1.0),
                  forward="return 2 - (a - b).abs().flatten(1).mean(1)")
    x, y = torch.zeros(2, 3, 32, 32), torch.full((2, 3, 32, 32), 0.5)
    assert ReconstructionLoss(LossConfig(spec)).perceptual(y, x).item() == pytest.approx(0.5)


@pytest.mark.parametrize("declaration,says", [
    (dict(kind="similarity", best=0.0), "negative"),  # a distance declared as a similarity
    (dict(kind="distance", best=0.0, forward="return 1 - (a - b).abs().flatten(1).mean(1)"),
     "not 0, on identical images"),  # a similarity declared as a distance
    (dict(forward="d = (a - b).abs().flatten(1).mean(1); return d * torch.exp(-d / 0.02)"),
     "not larger for more corrupted images"),  # not lower-is-better
    (dict(kind="distance", best=0.5), "not 0, on identical images"),  # wrong best value
    (dict(kind="distance", forward="return -(a - b).abs().flatten(1).mean(1)"), "negative"),
    (dict(forward="return (a - b).abs().mean()"), "one value per image"),
    (dict(forward="return ((a - b).abs() > 0.5).float().flatten(1).mean(1)"), "differentiable"),
    (dict(kind="dissimilarity"), "kind must be"),
    (dict(best="float('nan')"), "best must be a finite number"),
    (dict(input_range=(1, 0)), "input_range"),
    (dict(forward="raise ValueError('boom')"), "fails on 32x32 test images (ValueError: boom)"),
])
def test_a_plugin_that_breaks_the_convention_is_refused_in_one_line(tmp_path, monkeypatch, declaration, says):
    spec = plugin(tmp_path, monkeypatch, **declaration)
    with pytest.raises(UserError) as e:
        LossConfig(spec)
    assert says in str(e.value) and str(e.value).startswith(f"loss plugin '{spec}'")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("spec,says", [
    ("no_such_module:factory", "cannot import module 'no_such_module' (ModuleNotFoundError"),
    ("examples.charbonnier:nothing", "has no callable 'nothing'"),
    ("examples.charbonnier:", "not a 'module:factory' spec"),
    ("examples.charbonnier:EPSILON", "has no callable 'EPSILON'"),
    ("examples.charbonnier:Charbonnier", "must return a tune_vqvae.losses.Metric"),
])
def test_a_plugin_that_cannot_be_loaded_is_refused_in_one_line(spec, says):
    with pytest.raises(UserError) as e:
        LossConfig(spec)
    assert says in str(e.value), str(e.value)


def test_an_installed_package_registers_a_loss_by_name(tmp_path, monkeypatch):
    """An entry point in the group tune_vqvae.losses (what `pip install ./examples` writes)."""
    plugin(tmp_path, monkeypatch, module="plugged", name="plugged")
    info = tmp_path / "plugged-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugged\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tune_vqvae.losses]\nplugged = plugged:factory\n"
                                           "misnamed = plugged:factory\n")
    assert find_metric("plugged").name == "plugged"
    assert "plugged" in str(pytest.raises(UserError, LossConfig, "fancy").value)  # listed as valid
    with pytest.raises(UserError, match="declares name 'plugged'; register it under that name"):
        LossConfig("misnamed")


def test_a_plugin_in_a_search_space_yaml(tmp_path):
    from tune_vqvae.search import load_space

    path = tmp_path / "space.yaml"
    path.write_text(f"losses: [{EXAMPLE}]\nw: {{low: 0.01, high: 1}}\n")
    assert load_space(path).losses == [EXAMPLE]
    path.write_text("losses: [no_such_module:factory]\nw: {low: 0.01, high: 1}\n")
    with pytest.raises(UserError, match="key 'losses': loss plugin 'no_such_module:factory': cannot import"):
        load_space(path)


def test_a_plugin_without_a_yaml_file_gets_the_default_space():
    from tune_vqvae.search._spaces import space_for
    from tune_vqvae.vocab import paper_points

    space = space_for(EXAMPLE)
    assert (space.low, space.high, space.log, space.with_mse) == (1e-3, 10.0, True, [True, False])
    assert space.points == [dict(p) for p in paper_points()] and space.losses == [EXAMPLE]


def search_cli(*args, cwd=REPO, **env):
    return subprocess.run([sys.executable, "-m", "tune_vqvae.search", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "RAY_AUTH_MODE": "disabled", **env})


@pytest.mark.parametrize("spec,says", [
    ("examples.nothing_here:factory", "cannot import module 'examples.nothing_here'"),
    ("badsign:factory", "is it a distance, not a similarity?"),
])
def test_the_search_refuses_a_bad_plugin_with_exit_2_and_one_line(tmp_path, spec, says):
    plugin(tmp_path, pytest.MonkeyPatch(), module="badsign", kind="similarity", best=0.0)
    out = search_cli("--loss", spec, "--mock", "--storage-path", str(tmp_path / "s"),
                     PYTHONPATH=str(tmp_path))
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1 and says in err[0], out.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_a_real_search_trains_with_the_example_plugin_on_ray_workers(tmp_path):
    """From the repository root, as from a fresh clone: Ray's workers import the plugin from
    the driver's directory, train with it, and the report names it."""
    out = search_cli("--loss", EXAMPLE, "--smoke", "--epochs", "1", "--num-samples", "4", "--no-early-stop",
                     "--train-images", "256", "--storage-path", str(tmp_path), "--name", "plug",
                     "--baseline-seeds", "1", "--confirm-seeds", "0")  # the 4 searched runs only
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"{EXAMPLE}: best" in out.stdout and "mse+w*examples.charbonnier:factory" in out.stdout
    doc = json.loads((tmp_path / "plug" / "results.json").read_text())
    rows = [r for r in doc["trials"] if r["loss"] == EXAMPLE]
    assert len(rows) == 4 and all(r["status"] == "COMPLETED" for r in rows), rows
