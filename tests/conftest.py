"""Shared fixtures: the tiny model and a small slice of the built-in photographs."""

import shutil
import tempfile

import pytest
import torch

from tune_vqvae.data import DataConfig, load_data
from tune_vqvae.losses import LossConfig
from tune_vqvae.model import ModelConfig
from tune_vqvae.train import TrainConfig

torch.set_num_threads(2)


def tiny_config(**overrides) -> TrainConfig:
    """A model small enough to train in seconds on a 2-core CPU."""
    base = dict(
        model=ModelConfig(hidden=16, codebook_size=32),
        loss=LossConfig(),
        data=DataConfig(builtin_train=1024, builtin_test=256),
        epochs=2,
        batch_size=32,
        lr=1e-3,
        val_images=128,
        device="cpu",
    )
    base.update(overrides)
    return TrainConfig(**base)


def trial_config(**overrides) -> dict:
    """A trial config of a gmsd search (the keys tune_vqvae.vocab.loss_settings reads)."""
    return {"loss": "gmsd", "role": "search", "with_mse": True, "w": None, **overrides}


@pytest.fixture(scope="session")
def builtin_data():
    return load_data(DataConfig(builtin_train=1024, builtin_test=256))


@pytest.fixture
def no_wandb_key(tmp_path, monkeypatch):
    """No W&B API key anywhere wandb looks (environment, ~/.netrc of a `wandb login`, its
    config dir), and W&B online."""
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_SETUP_API_KEY_HOOK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "cfg"))


@pytest.fixture(scope="module")
def ray_cluster():
    """One local 2-CPU Ray on 127.0.0.1 for a test module; `search.main` reuses it."""
    import ray  # only the search-layer tests need ray

    ray_tmp = tempfile.mkdtemp(prefix="rr", dir="/tmp")  # short: Ray's socket paths must fit
    from tune_vqvae.search import _compat

    _compat.init_local_ray(2, temp_dir=ray_tmp)
    yield
    ray.shutdown()
    shutil.rmtree(ray_tmp, ignore_errors=True)


class _RunsCode:
    """An object whose unpickling runs a command: what a malicious checkpoint would hold."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def write_payload_checkpoint(path, marker) -> None:
    """A real trainer state with one object that would create `marker` if unpickled."""
    from tune_vqvae.train import Trainer

    state = Trainer(tiny_config(epochs=1)).state_dict()
    state["history"].append(_RunsCode(marker))
    torch.save(state, path)
