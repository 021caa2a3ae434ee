import numpy as np
import pytest
import torch

from tune_vqvae.data import DataConfig, DeviceBatches, builtin_images, load_data
from tune_vqvae.errors import UserError


def test_builtin_is_real_photo_crops_deterministic_per_seed():
    a_train, a_test = builtin_images(64, 16, seed=1)
    b_train, _ = builtin_images(64, 16, seed=1)
    c_train, _ = builtin_images(64, 16, seed=2)
    assert a_train.shape == (64, 32, 32, 3) and a_test.shape == (16, 32, 32, 3)
    assert a_train.dtype == np.uint8
    assert np.array_equal(a_train, b_train) and not np.array_equal(a_train, c_train)
    assert a_train.std() > 20  # photographs, not flat colour


def test_npz_keras_layout_loads_as_nchw(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x_train, x_test=x_test, y_train=np.zeros(10))
    data = load_data(DataConfig(source=str(tmp_path / "d.npz"), train_images=6))
    assert data.x_train.shape == (6, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert torch.equal(data.x_train[2].permute(1, 2, 0), torch.from_numpy(x_train[2]))
    other = load_data(DataConfig(source=str(tmp_path / "d.npz")))
    assert other.fingerprint != data.fingerprint  # a different slice keys caches differently


def bad_npz(tmp_path, kind):
    path = tmp_path / "bad.npz"
    good = np.zeros((4, 32, 32, 3), np.uint8)
    if kind == "missing":
        return tmp_path / "nope.npz"
    if kind == "corrupt":
        path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    elif kind == "no_x_test":
        np.savez(path, x_train=good)
    elif kind == "float":
        np.savez(path, x_train=good.astype(np.float32), x_test=good)
    elif kind == "channels_first":
        np.savez(path, x_train=good.transpose(0, 3, 1, 2), x_test=good)
    return path


@pytest.mark.parametrize("kind", ["missing", "corrupt", "no_x_test", "float", "channels_first"])
def test_bad_npz_is_a_user_error(tmp_path, kind):
    with pytest.raises(UserError):
        load_data(DataConfig(source=str(bad_npz(tmp_path, kind))))


def test_cifar10_without_network_says_how_to_supply_it(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    with pytest.raises(UserError, match="cifar-10-python.tar.gz"):
        load_data(DataConfig(source="cifar10", cache_dir=str(tmp_path)))
    # a cache directory the failed download created is not left behind (nor its lock file)
    with pytest.raises(UserError, match="cifar-10-python.tar.gz"):
        load_data(DataConfig(source="cifar10", cache_dir=str(tmp_path / "new" / "cache")))
    assert not (tmp_path / "new").exists()


def test_a_text_file_named_npz_is_not_blamed_on_pickled_data(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("x_train,x_test\n1,2\n")
    with pytest.raises(UserError, match=r"notes.npz is not an .npz file \(an .npz is a zip archive") as e:
        load_data(DataConfig(source=str(path)))
    assert "pickle" not in str(e.value)


def test_device_batches_cover_the_epoch_in_a_seeded_order():
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 4, 4).contiguous()
    batches = DeviceBatches(x, batch_size=3, device=torch.device("cpu"), seed=5)
    first = [b[:, 0, 0, 0] for b in batches.epoch(0)]
    assert len(first) == 3 and all(len(b) == 3 for b in first)  # ragged batch dropped
    values = torch.cat(first)
    assert len(set(values.tolist())) == 9 and values.min() >= -1 and values.max() <= 1
    again = torch.cat([b[:, 0, 0, 0] for b in batches.epoch(0)])
    other = torch.cat([b[:, 0, 0, 0] for b in batches.epoch(1)])
    assert torch.equal(values, again) and not torch.equal(values, other)


def test_holdout_is_the_tail_of_the_training_set_and_never_trained_on(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x_train, x_test=x_train[:4])
    plain = load_data(DataConfig(source=str(tmp_path / "d.npz")))
    assert plain.x_val is plain.x_test  # default: validate on test (the paper's protocol)
    held = load_data(DataConfig(source=str(tmp_path / "d.npz"), holdout=3, train_images=5))
    assert torch.equal(held.x_val, plain.x_train[7:]) and torch.equal(held.x_test, plain.x_test)
    assert torch.equal(held.x_train, plain.x_train[:5])  # --train-images counts from the rest
    assert held.fingerprint != plain.fingerprint
    with pytest.raises(UserError, match="--holdout 10 leaves no training images"):
        load_data(DataConfig(source=str(tmp_path / "d.npz"), holdout=10))
