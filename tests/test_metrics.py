"""tune_vqvae.metrics: streaming statistics and Fréchet distance, SWD, Inception weights, the
scorer and its reference cache; and the benchmark of feature extraction."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from pytorch_fid.fid_score import calculate_frechet_distance
from pytorch_fid.inception import FID_WEIGHTS_URL
from torch import nn

from tune_vqvae.bench.compute import benchmark_features
from tune_vqvae.data import ImageData
from tune_vqvae.errors import UserError, cli_entry
from tune_vqvae.metrics import (
    FID_WEIGHTS_FILE,
    WEIGHTS_ENV,
    FIDConfig,
    FIDEvaluator,
    StreamingStats,
    check_fid_weights,
    fid_weights_available,
    frechet_distance,
    inception,
    require_fid_weights,
    swd,
)

# ---------------------------------------------------------------- fixtures and helpers


def make_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """uint8 NCHW images with smooth structure plus fine texture, so blur changes them."""
    g = torch.Generator().manual_seed(seed)
    low = F.interpolate(
        torch.rand(n, 3, size // 8, size // 8, generator=g),
        size=size,
        mode="bilinear",
        align_corners=False,
    )
    high = torch.rand(n, 3, size, size, generator=g)
    return ((0.6 * low + 0.4 * high) * 255).round().clamp(0, 255).to(torch.uint8)


def make_data(n_test: int = 64, seed: int = 0, name: str = "toy") -> ImageData:
    x = make_images(n_test, seed=seed)
    fp = hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16]
    return ImageData(x_train=x[:4], x_test=x, name=name, fingerprint=fp)


class RandomFeatures(nn.Module):
    """Fixed random conv net: [0, 1] images -> (N, 32) features; counts its calls."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        h = torch.relu(self.conv2(torch.relu(self.conv1(x * 2 - 1))))
        return torch.cat([h.mean((2, 3)), h.std((2, 3))], dim=1)


def blur(x01: torch.Tensor, sigma: float) -> torch.Tensor:
    return (
        x01
        if sigma == 0
        else torchvision.transforms.functional.gaussian_blur(
            x01, kernel_size=2 * int(3 * sigma) + 1, sigma=sigma
        )
    )


def blurring(sigma: float):
    return lambda x_u8: blur(x_u8.float() / 255, sigma)


def identity(x_u8):
    return x_u8.float() / 255


def evaluator(tmp_path, data, extractor=None, split="val", **cfg):
    cfg = FIDConfig(cache_dir=str(tmp_path / "cache"), **{"batch_size": 16, **cfg})
    extractor = extractor or RandomFeatures()
    return FIDEvaluator(cfg, data, "cpu", extractor=extractor, extractor_id="random-conv-v1", split=split)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No env var, an empty torch hub dir, and a download that fails as it does offline."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def fail(url, dest, timeout):
        raise OSError("no network")

    monkeypatch.setattr(inception, "fetch_url", fail)


def random_inception_file(path) -> str:
    """A file with pytorch-fid's Inception architecture and random weights: the FID
    Inception's patched blocks keep torchvision's parameters, so torchvision's
    inception_v3(num_classes=1008, aux_logits=False) has the exact same state dict keys."""
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )
    torch.save(net.state_dict(), path)
    return str(path)


# ---------------------------------------------------------------- statistics and distance


def test_streaming_stats_equal_numpy():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((301, 24)) * rng.uniform(0.1, 5, 24) + 100.0  # large offset
    stats = StreamingStats()
    for chunk in np.array_split(feats, [7, 100, 250]):
        stats.update(torch.from_numpy(chunk).float())
    f32 = feats.astype(np.float32).astype(np.float64)
    assert stats.count == 301
    np.testing.assert_allclose(stats.mean(), f32.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov(), np.cov(f32, rowvar=False), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n, d", [(500, 64), (600, 128)])
def test_frechet_distance_equals_pytorch_fid(n, d):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, d))
    b = rng.standard_normal((n, d)) @ (np.eye(d) + 0.1 * rng.standard_normal((d, d))) + 0.2
    args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    ours, ref = frechet_distance(*args), calculate_frechet_distance(*args)
    assert ours == pytest.approx(ref, rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero(tmp_path):
    rng = np.random.default_rng(2)
    feats = rng.standard_normal((400, 32))
    mu, sigma = feats.mean(0), np.cov(feats, rowvar=False)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)
    ev = evaluator(tmp_path, make_data())
    out = ev.evaluate(identity)
    assert ev.metrics == ("fid", "kid", "swd")
    assert abs(out["fid"]) < 1e-6
    assert out["swd"] == pytest.approx(0.0, abs=1e-9)


def test_fid_and_swd_grow_with_blur(tmp_path):
    ev = evaluator(tmp_path, make_data(64), batch_size=64)
    scores = [ev.evaluate(blurring(s)) for s in (0.0, 0.7, 1.5)]
    fids, swds = [s["fid"] for s in scores], [s["swd"] for s in scores]
    assert fids == sorted(fids) and fids[0] < 1e-6 < fids[1], fids
    assert swds == sorted(swds) and swds[0] < 1e-9 < swds[1], swds


def test_swd_is_deterministic_for_a_seed():
    x = make_images(32).float() / 255
    y = blur(x, 1.0)
    assert swd(x, y, seed=3) == swd(x, y, seed=3)
    assert swd(x, y, seed=3) != swd(x, y, seed=4)


def test_halves_score_each_half_and_leave_the_full_score_alone(tmp_path):
    """The noise budget's inputs: each metric on the first and the second half of its images
    (the halves cross a batch: 48 images in batches of 16), the full scores unchanged."""
    data = make_data(48)
    ev = evaluator(tmp_path, data, batch_size=16, swd_samples=40, kid_subset_size=20, kid_subsets=5)
    plain, split = ev.evaluate(blurring(1.0)), ev.evaluate(blurring(1.0), halves=True)
    assert not any("half" in k for k in plain)
    assert {k: split[k] for k in plain} == plain
    assert (split["fid_images"], split["kid_images"], split["swd_images"]) == (48, 48, 40)
    real = _features(ev, data.x_test[:48]).astype(np.float64)
    fake = _features(ev, blur(data.x_test[:48].float() / 255, 1.0)).astype(np.float64)
    moments = lambda f: (f.mean(0), np.cov(f, rowvar=False))
    for half, rows in ((1, slice(None, 24)), (2, slice(24, None))):
        want = frechet_distance(*moments(fake[rows]), *moments(real[rows]))
        assert split[f"fid_half{half}"] == pytest.approx(want, rel=1e-4)
        assert split[f"swd_half{half}"] > 0 and split[f"kid_half{half}"] > 0
    same = ev.evaluate(identity, halves=True)  # a perfect reconstruction: every half scores 0
    assert abs(same["fid_half1"]) < 1e-6 and same["swd_half2"] == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------- KID


def _kid_reference(x: np.ndarray, y: np.ndarray) -> float:
    """KID of two equal-size sets by the formula of Binkowski et al. 2018 (eq. 4), written out
    with loops over pairs: unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3."""
    m, d = len(x), x.shape[1]
    k = lambda a, b: (a @ b / d + 1.0) ** 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def _features(ev, images) -> np.ndarray:
    with torch.inference_mode():
        return ev.extractor(identity(images) if images.dtype == torch.uint8 else images).numpy()


def test_kid_of_the_scorer_equals_kid_on_the_same_features(tmp_path):
    from tune_vqvae.metrics.kid import kid

    data = make_data(48)
    ev = evaluator(tmp_path, data, batch_size=16, kid_subsets=7, kid_subset_size=20, seed=3)
    out = ev.evaluate(blurring(1.0))
    real = _features(ev, data.x_test[:48])
    fake = _features(ev, blur(data.x_test[:48].float() / 255, 1.0))
    np.testing.assert_allclose(ev.reference_features(), real, rtol=1e-6)
    mean, std = kid(fake, real, subsets=7, subset_size=20, seed=3)
    assert out["kid"] == pytest.approx(mean, rel=1e-5) and out["kid_std"] == pytest.approx(std, rel=1e-5)
    assert out["kid_std"] > 0 and out["kid"] > 0  # blur moves the features
    # ... and kid is the textbook formula: all 48 images in one subset
    full = kid(fake, real, subsets=1, subset_size=48)[0]
    assert full == pytest.approx(_kid_reference(fake.astype(np.float64), real.astype(np.float64)), rel=1e-9)


def test_kid_grows_with_blur_and_reference_features_are_cached(tmp_path):
    data = make_data(40)
    first = evaluator(tmp_path, data, batch_size=16, kid_subset_size=20, kid_subsets=10)
    kids = [first.evaluate(blurring(s))["kid"] for s in (0.0, 0.7, 1.5)]
    # identical sets: KID ~ 0 (not exactly: each subset draws other images of each set)
    assert kids == sorted(kids) and abs(kids[0]) < 0.2 * kids[1], kids
    second = evaluator(tmp_path, data, batch_size=16, kid_subset_size=20, kid_subsets=10)
    np.testing.assert_array_equal(second.reference_features(), first.reference_features())
    assert second.extractor.calls == 0  # features read from the cache, not recomputed
    with np.load(first.cache_path()) as z:
        assert z["feats"].shape == (40, 32) and z["feats"].dtype == np.float32
        assert '"version": 2' in str(z["key"])


def test_cache_of_an_older_version_is_recomputed(tmp_path):
    """A version-1 cache (mu and sigma only, no features) is not read: KID needs features."""
    import io
    import json

    data = make_data(20)
    ev = evaluator(tmp_path, data)
    path = ev.cache_path()
    path.parent.mkdir(parents=True)
    old_key = {**ev._cache_key(), "version": 1}
    buf = io.BytesIO()
    np.savez(buf, mu=np.zeros(32), sigma=np.eye(32), key=np.array(json.dumps(old_key, sort_keys=True)))
    path.write_bytes(buf.getvalue())
    assert ev.reference_features().shape == (20, 32) and ev.extractor.calls == 2


def test_kid_is_a_valid_objective(tmp_path):
    """--objective kid: accepted by the search's settings; the trainable re-scores it on the
    evaluation schedule (EVAL_METRICS) and reports the scorer's kid as the objective, and
    test_kid at the end of a --holdout search (TEST_METRICS)."""
    from tune_vqvae.objectives import get
    from tune_vqvae.search import SearchConfig
    from tune_vqvae.vocab import EVAL_METRICS, TEST_METRICS, test_metric

    SearchConfig(losses=["gmsd"], objective="kid").validate()
    assert "kid" in EVAL_METRICS and test_metric("kid") in TEST_METRICS
    out = evaluator(tmp_path, make_data(24), kid_subset_size=12).evaluate(blurring(1.0))
    assert get("kid").report(out)["objective"] == out["kid"]  # lower is better: minimised as is


# ---------------------------------------------------------------- weights


@pytest.mark.slow
def test_weights_file_loads_through_user_path(tmp_path, no_weights):
    path = random_inception_file(tmp_path / FID_WEIGHTS_FILE)
    cfg = FIDConfig(
        samples=2,
        batch_size=2,
        weights_path=path,
        offline_metric=False,
        cache_dir=str(tmp_path / "cache"),
    )
    ev = FIDEvaluator(cfg, make_data(8), "cpu")  # the code path users run
    assert isinstance(ev.extractor, inception.InceptionFeatures) and ev.metrics == ("fid", "kid")
    saved = torch.load(path, weights_only=True)
    torch.testing.assert_close(ev.extractor.net.blocks[0][0].conv.weight, saved["Conv2d_1a_3x3.conv.weight"])
    out = ev.evaluate(identity)
    assert ev.reference_stats()[0].shape == (2048,)
    assert np.isfinite(out["fid"]) and abs(out["fid"]) < 1e-6
    assert "sha256:" in ev.extractor_id and ev.cache_path().is_file()


def test_weights_from_env_and_hub(tmp_path, no_weights, monkeypatch):
    assert check_fid_weights(FIDConfig()) is None and not fid_weights_available(FIDConfig())
    hub = tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_FILE
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    assert check_fid_weights(FIDConfig()) == str(hub)
    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"x")
    monkeypatch.setenv(WEIGHTS_ENV, str(env_file))
    assert check_fid_weights(FIDConfig()) == str(env_file)


def test_wrong_architecture_file_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save(nn.Linear(2, 2).state_dict(), bad)
    with pytest.raises(UserError, match="does not fit pytorch-fid's InceptionV3"):
        inception.InceptionFeatures(str(bad))
    bad.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cannot be read"):
        inception.InceptionFeatures(str(bad))


def assert_missing_message(msg: str):
    assert "\n" not in msg
    for part in (FID_WEIGHTS_FILE, FID_WEIGHTS_URL, "--fid-weights PATH", WEIGHTS_ENV):
        assert part in msg


def test_weights_are_checked_for_hash_keys_and_shapes_before_use(tmp_path):
    import torchvision

    from tune_vqvae.metrics import verify_fid_weights

    good = tmp_path / "my-inception.pth"  # right keys and shapes, own name: no hash to check
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                          init_weights=False)  # the FID Inception's layout
    torch.save(net.state_dict(), good)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\0" * 1024)
    named_like_the_real_one = tmp_path / FID_WEIGHTS_FILE
    named_like_the_real_one.write_bytes(good.read_bytes())
    wrong_shapes = tmp_path / "small.pth"
    torch.save({"conv.weight": torch.zeros(3)}, wrong_shapes)
    assert verify_fid_weights(str(good)) == str(good)
    for path, says in ((junk, "not a PyTorch weights file"), (named_like_the_real_one, "sha256"),
                       (wrong_shapes, "does not fit")):
        with pytest.raises(UserError, match=says):
            verify_fid_weights(str(path))


def test_missing_weights_file_is_exit_2(tmp_path, no_weights, capsys):
    cfg = FIDConfig(weights_path=str(tmp_path / "nope.pth"))
    with pytest.raises(UserError) as e:
        check_fid_weights(cfg)
    assert_missing_message(str(e.value))
    assert "nope.pth" in str(e.value)

    @cli_entry
    def main(argv):
        require_fid_weights(FIDConfig())  # no path, empty hub, download fails

    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert_missing_message(err.rstrip("\n"))


def test_without_weights_fid_is_skipped_or_refused(tmp_path, no_weights):
    data = make_data(8)
    cache = str(tmp_path / "cache")
    ev = FIDEvaluator(FIDConfig(cache_dir=cache, swd_samples=8), data)
    assert ev.metrics == ("swd",)
    assert set(ev.evaluate(blurring(1.0))) == {"swd"}
    for cfg in (
        FIDConfig(cache_dir=cache, fid_mode="required"),
        FIDConfig(cache_dir=cache, offline_metric=False),
    ):
        with pytest.raises(UserError):
            FIDEvaluator(cfg, data)


# ---------------------------------------------------------------- reference cache


def test_reference_cache_reused_and_keyed_by_dataset(tmp_path):
    data = make_data(40)
    first = evaluator(tmp_path, data, batch_size=16)
    mu, sigma = first.reference_stats()
    assert first.extractor.calls == 3  # ceil(40 / 16)

    second = evaluator(tmp_path, data, batch_size=16)  # a new trial on the same node
    mu2, sigma2 = second.reference_stats()
    assert second.extractor.calls == 0
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)
    second.evaluate(identity)
    assert second.extractor.calls == 3  # reconstructions only

    other = make_data(40, seed=1, name="toy")  # same name, other pixels
    third = evaluator(tmp_path, other, batch_size=16)
    third.reference_stats()
    assert third.extractor.calls == 3
    assert third.cache_path() != first.cache_path()
    files = sorted(p.name for p in (tmp_path / "cache" / "fid_stats").iterdir())
    assert len([f for f in files if f.endswith(".npz")]) == 2
    assert not [f for f in files if f.endswith(".tmp")]


def test_validation_and_test_splits_are_scored_and_cached_apart(tmp_path):
    x = make_images(48)
    data = ImageData(x_train=x[:8], x_test=x[:24], name="toy", fingerprint="f", x_holdout=x[24:])
    val, test = evaluator(tmp_path, data), evaluator(tmp_path, data, split="test")
    assert val.cache_path() != test.cache_path()
    # Each scores its own images against its own reference: a perfect reconstruction is 0.
    for ev, images in ((val, x[24:]), (test, x[:24])):
        scored = []
        out = ev.evaluate(lambda x_u8: (scored.append(x_u8), identity(x_u8))[1])
        assert torch.equal(torch.cat(scored), images) and abs(out["fid"]) < 1e-6


def test_samples_clipped_to_test_set(tmp_path):
    ev = evaluator(tmp_path, make_data(20), samples=10_000)
    assert ev.samples == 20 and ev.swd_samples == 20
    seen = []
    ev.evaluate(lambda x: (seen.append(len(x)), identity(x))[1])
    assert sum(seen) == 20 and max(seen) <= 16


@pytest.mark.parametrize(
    "bad",
    [
        {"samples": 1},
        {"batch_size": 0},
        {"fid_mode": "maybe"},
        {"fid_mode": "off", "offline_metric": False},
        {"kid_subsets": 0},
        {"kid_subset_size": 1},
    ],
)
def test_config_validation(bad):
    with pytest.raises(UserError):
        FIDConfig(**bad)


def test_benchmark_features_reports_throughput():
    out = benchmark_features(RandomFeatures(), n_images=40, batch_size=16)
    assert out["images"] == 40 and out["images_per_s"] > 0 and out["peak_mem_mb"] > 0
